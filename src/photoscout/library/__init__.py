"""The photo library on disk and in the ``photos`` table: finding files (``walker``), reading one (``imagefile``),
the incremental scan (``scanner``), paths stored as bytes and text (``paths``), and reading the catalogue
(``catalog``)."""
