"""Model-hub backends (Hugging Face transformers + torch): for users with a network or with files copied in.
Imported only when such a model is used; install with the ``hub`` extra."""

from __future__ import annotations

from typing import Any

from photoscout.errors import PhotoscoutError


def torch_device(device: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise PhotoscoutError("hub models need torch and transformers: pip install 'photoscout[hub]'") from exc
    if device == "cuda" and not torch.cuda.is_available():
        raise PhotoscoutError("device = 'cuda' but torch sees no CUDA GPU (set device = 'auto' or 'cpu')")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def set_threads(threads: int) -> None:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    if threads:
        torch.set_num_threads(threads)


def features_tensor(out: Any) -> Any:
    """``get_*_features`` return a tensor, or (newer transformers) an output object with ``pooler_output``."""
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    return out
