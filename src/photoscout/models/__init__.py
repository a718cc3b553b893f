"""Models: one interface per type (base.py), one module per backend, a factory (factory.py)."""

MODEL_TYPES = ("embedding", "detector", "captioning", "ocr", "few_shot")  # here so a --help needs no numpy
