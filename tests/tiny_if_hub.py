"""Tiny, randomly initialised DeepFloyd IF pipeline folders laid out as on the hub.

The course's loading code (``deepfloyd.load_stage_1/2``, ``compute_prompt_embeddings``) runs on
them unchanged: ``model_index.json`` names the same classes as IF's, the tokenizer folder holds
only a SentencePiece ``spiece.model`` and its config (as IF's does, so transformers 5 must convert
it, which needs protobuf), and the T5 encoder emits IF's (77, 4096) states. Only the widths are
toy-sized. Needs diffusers, transformers and sentencepiece; deliberately not protobuf.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

T5_SPECIAL = dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1)  # T5's ids: <pad>=0, </s>=1, <unk>=2
WORDS = ("a photo of a dog man rocket ship oil painting old people around campfire snowy mountain "
         "village hipster barista lithograph skull waterfalls pencil amalfi coast wearing hat high quality")


def _tokenizer_folder(folder: Path, vocab_size: int = 48) -> int:
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    sentences = [WORDS] + [" ".join(WORDS.split()[i::3]) for i in range(3)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences * 50), model_prefix=str(folder / "spiece"),
                                   vocab_size=vocab_size, model_type="unigram", minloglevel=2,
                                   pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>", **T5_SPECIAL)
    (folder / "spiece.vocab").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "T5Tokenizer", "model_max_length": 512, "extra_ids": 0, "eos_token": "</s>",
         "pad_token": "<pad>", "unk_token": "<unk>", "additional_special_tokens": []}))
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}))
    return vocab_size


def _tiny_t5(vocab_size: int, seed: int):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=vocab_size, d_model=4096, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                      feed_forward_proj="gated-gelu", relative_attention_num_buckets=8,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return T5EncoderModel(config).eval()


def _point_model_index_at_tokenizer(folder: Path) -> None:
    index = json.loads((folder / "model_index.json").read_text())
    index["tokenizer"] = ["transformers", "T5Tokenizer"]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def build_stage_1(folder: Path, seed: int = 0) -> Path:
    """IF-I-XL's layout: tokenizer, text_encoder, unet, scheduler (no safety checker)."""
    from diffusers import IFPipeline

    from course_utils.part_a.noise_models import tiny_if_unet
    from course_utils.part_a.schedule import if_scheduler

    folder = Path(folder)
    vocab = _tokenizer_folder(folder / "tokenizer")
    pipe = IFPipeline(tokenizer=None, text_encoder=_tiny_t5(vocab, seed), unet=tiny_if_unet(seed),
                      scheduler=if_scheduler(), safety_checker=None, feature_extractor=None,
                      watermarker=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    _point_model_index_at_tokenizer(folder)
    return folder


def build_stage_2(folder: Path, seed: int = 1) -> Path:
    """IF-II-L's layout: a 6-channel UNet conditioned on the noise level, 64 → 256."""
    from diffusers import DDPMScheduler, IFSuperResolutionPipeline

    from course_utils.part_a.noise_models import tiny_if_unet
    from course_utils.part_a.schedule import if_scheduler

    folder = Path(folder)
    _tokenizer_folder(folder / "tokenizer")
    unet = tiny_if_unet(seed, in_channels=6, sample_size=256, class_embed_type="timestep")
    pipe = IFSuperResolutionPipeline(
        tokenizer=None, text_encoder=None, unet=unet, scheduler=if_scheduler(sample_max_value=1.0),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), safety_checker=None,
        feature_extractor=None, watermarker=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    _point_model_index_at_tokenizer(folder)
    return folder
