"""Models: one interface per type (base.py), one module per backend, a factory (factory.py)."""
