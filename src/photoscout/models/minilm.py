"""all-MiniLM-L6-v2 sentence embeddings (384-d) with ONNX Runtime and the ``tokenizers`` library: mean pooling
over the attention mask, then L2 normalisation (as sentence-transformers does). No torch at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from photoscout.models.base import RuntimeOptions, l2_normalize
from photoscout.models.onnx_runtime import session

MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained with


class MiniLMTextEncoder:
    def __init__(self, model_path: Path, tokenizer_path: Path, runtime: RuntimeOptions) -> None:
        from tokenizers import Tokenizer

        self.session: Any = session(model_path, runtime)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.batch_size = max(1, runtime.batch_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            encs = self.tokenizer.encode_batch(texts[start: start + self.batch_size])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feed)[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out.append(l2_normalize(pooled))
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)
