"""Model-hub backends (Hugging Face transformers + torch): for users with a network or with files copied in.
Imported only when such a model is used; install with the ``hub`` extra."""

from __future__ import annotations

from typing import Any, ClassVar

from photoscout.common.errors import PhotoscoutError
from photoscout.models.base import Model


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


class HubModel(Model):
    """The one loader of the transformers backends: the model class ``auto_class`` (a transformers class name), its
    tokenizer and its image processor, all from the artifact folder, on the configured device and threads. A
    backend sets ``auto_class`` and may read its own settings in ``_configure``."""

    auto_class: ClassVar[str]

    def _load(self) -> None:
        import transformers

        set_threads(self.runtime.threads)
        folder = str(self.spec.artifact_dir)
        self.device = torch_device(self.runtime.device)
        self.model = getattr(transformers, self.auto_class).from_pretrained(folder).to(self.device).eval()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.processor = transformers.AutoImageProcessor.from_pretrained(folder)
        self._configure()

    def _configure(self) -> None:
        """Backend settings read after loading (defaults: none)."""
