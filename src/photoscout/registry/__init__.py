"""The model registry: entries and their status history (``lifecycle``), verified artifacts (``artifacts``), the
built-in offline models (``builtin``), models from a folder or a hub (``local``), and the human-readable decision
log (``decisions``)."""
