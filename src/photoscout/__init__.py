"""photoscout: local-first photo library search on PostgreSQL + pgvector."""

__version__ = "0.1.0"
