"""Tiny, randomly initialised hub models built locally from configs (never downloaded), for backend tests."""

from pathlib import Path


def build_tiny_siglip(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipImageProcessor, SiglipModel
    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]"] + "a photo of the cat dog pizza laptop receipt screenshot food car".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", model_max_length=16)
    cfg = SiglipConfig(text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=37,
                                        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=16),
                       vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                          num_attention_heads=4, image_size=32, patch_size=8))
    SiglipModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder

def _tok(folder, extra=()):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + list(extra)
    words += "a photo of the face cat dog pizza laptop receipt car food".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[CLS]",
                                   eos_token="[SEP]", cls_token="[CLS]", sep_token="[SEP]", model_max_length=16)
    fast.save_pretrained(folder)
    return len(words)

def build_tiny_owlvit(folder: Path) -> Path:
    import torch
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor
    torch.manual_seed(0)
    n = _tok(folder)
    cfg = OwlViTConfig(text_config=dict(vocab_size=n, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=16),
                       vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                          num_attention_heads=4, image_size=32, patch_size=8), projection_dim=32)
    OwlViTForObjectDetection(cfg).save_pretrained(folder)
    size = {"height": 32, "width": 32}
    OwlViTImageProcessor(size=size, crop_size=size).save_pretrained(folder)
    return folder

def build_tiny_blip(folder: Path) -> Path:
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor
    torch.manual_seed(0)
    n = _tok(folder)
    cfg = BlipConfig(text_config=dict(vocab_size=n, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=32, bos_token_id=2,
                                      sep_token_id=3, pad_token_id=0, eos_token_id=3),
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, image_size=32, patch_size=8), projection_dim=32)
    BlipForConditionalGeneration(cfg).save_pretrained(folder)
    BlipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def build_tiny_clip(folder: Path) -> Path:
    """A tiny CLIP (text padded to the longest with a mask; images resized by the shorter side and centre-cropped)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    torch.manual_seed(0)
    vocab = _tok(folder)
    cfg = CLIPConfig(text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=16, bos_token_id=2,
                                      eos_token_id=3, pad_token_id=0),
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, image_size=32, patch_size=8), projection_dim=24)
    CLIPModel(cfg).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
