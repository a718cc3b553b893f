"""A model of the real size, built here: the SigLIP2 base patch16-224 architecture (``google/siglip2-base-patch16-224``:
a ViT-B/16 image tower at 224 px, a 12-layer text tower with Gemma's 256k-token vocabulary, 768-d output, ~375M
parameters) instantiated from its configuration with random weights (transformers, no download) and saved as a model
folder that ``photoscout models register --from DIR --backend hf-image-text`` takes, like a downloaded one.

Its vectors mean nothing, so no quality is claimed; every cost is real (weights on disk and in memory, the forward
pass, 768-d vectors, their index). The tokenizer is a byte-level BPE trained here on ImageNet's class names (Gemma's
SentencePiece model is a download); SigLIP pads every query to 64 tokens, so a query costs the same with either.

Usage: .venv/bin/python -m benchmarks.fullsize DIR [--tiny] [--onnx]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# google/siglip2-base-patch16-224's config.json, the parts that size the model
SIGLIP2_BASE: dict[str, Any] = {
    "text_config": {"vocab_size": 256000, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                    "num_attention_heads": 12, "max_position_embeddings": 64, "projection_size": 768},
    "vision_config": {"image_size": 224, "patch_size": 16, "hidden_size": 768, "intermediate_size": 3072,
                      "num_hidden_layers": 12, "num_attention_heads": 12},
}
# the same shape, small, for tests of the path (register, job, search) that need not pay the real size
TINY: dict[str, Any] = {
    "text_config": {"vocab_size": 4096, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "max_position_embeddings": 64, "projection_size": 64},
    "vision_config": {"image_size": 64, "patch_size": 16, "hidden_size": 64, "intermediate_size": 128,
                      "num_hidden_layers": 2, "num_attention_heads": 4},
}
CLASSES = Path(__file__).resolve().parent.parent / "src" / "photoscout" / "models" / "data" / "imagenet_classes.tsv"


def _tokenizer(folder: Path, vocab: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    words = CLASSES.read_text().lower().replace("\t", " ").splitlines()
    trainer = trainers.BpeTrainer(vocab_size=min(vocab, 8000), special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(words * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>", model_max_length=64)
    fast.save_pretrained(str(folder))


def build(folder: Path, *, tiny: bool = False, seed: int = 0) -> Path:
    """Write the model folder (config, random weights as safetensors, tokenizer, image processor); the folder."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    shape = TINY if tiny else SIGLIP2_BASE
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    text = {**shape["text_config"], "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2}  # the tokenizer's
    config = SiglipConfig(text_config=text, vision_config=dict(shape["vision_config"]))
    model = SiglipModel(config).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    side = int(shape["vision_config"]["image_size"])
    SiglipImageProcessor(size={"height": side, "width": side}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                         resample=2).save_pretrained(str(folder))
    _tokenizer(folder, int(shape["text_config"]["vocab_size"]))
    (folder / "README.md").write_text(
        "SigLIP2 base patch16-224 architecture with RANDOM weights, built by photoscout's benchmarks/fullsize.py "
        "for cost measurements only: its vectors mean nothing.\n" if not tiny else
        "A tiny SigLIP-shaped model with random weights, for photoscout's tests.\n")
    return folder


def parameters(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            count = 1
            for d in f.get_slice(key).get_shape():
                count *= int(d)
            total += count
    return total


def export_onnx(folder: Path, out: Path, *, int8: bool = False, batch: int = 8) -> Path:
    """The image tower (pixels -> the 768-d image features) as ONNX; with ``int8`` dynamically quantized weights
    (onnxruntime.quantization). The file written."""
    import torch
    from transformers import SiglipModel

    model = SiglipModel.from_pretrained(str(folder)).eval()

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            out = self.m.get_image_features(pixel_values=pixel_values)
            return out.pooler_output if hasattr(out, "pooler_output") else out

    side = int(model.config.vision_config.image_size)
    fp32 = out.with_suffix(".fp32.onnx") if int8 else out
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(batch, 3, side, side)
    torch.onnx.export(ImageTower(), (dummy,), str(fp32), input_names=["pixel_values"], output_names=["features"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "features": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    if not int8:
        return fp32
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--tiny", action="store_true", help="a tiny model of the same shape (tests)")
    a = ap.parse_args()
    build(a.folder, tiny=a.tiny)
    cfg = json.loads((a.folder / "config.json").read_text())
    print(json.dumps({"folder": str(a.folder), "model_type": cfg.get("model_type"), "parameters": parameters(a.folder),
                      "bytes": sum(p.stat().st_size for p in a.folder.iterdir())}))
