"""Running models on photos and storing what they produce: which photos need a model (``photos``), decoding them
once per batch (``decode``), running each model type (``runner``), writing the outputs idempotently (``store``),
photo categories (``categories``) and few-shot classes (``fewshot``)."""
