"""Changing which model version is active, the design note's promotion step: activation and rollback
(``activation``), and promotion through the evaluation gate (``promotion``). The only place the active version
changes; the photos' categories switch with it, in the same transaction."""
