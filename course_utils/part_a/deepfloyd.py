"""Part A: loading DeepFloyd IF through ``diffusers``, and prompt embeddings.

Stage I (``IF-I-XL-v1.0``, 64×64) and stage II (``IF-II-L-v1.0``, 64 → 256) are gated on the
Hugging Face hub: accept the licence on each model page, then log in (``hub.hub_login()``: the
Colab secret ``HF_TOKEN`` or ``huggingface_hub.login()``). The UNets are loaded without the
4.7B-parameter T5 text encoder and without its tokenizer; prompts come in as embeddings, computed
once with T5 (``compute_prompt_embeddings``, 8-bit on a GPU) and kept in a ``.pth`` file
{prompt: (1, 77, 4096) tensor}. ``memory_plan`` checks that each step fits a free Colab T4.
"""
from __future__ import annotations

import difflib
import gc
import hashlib
import importlib.util
import pickle
from pathlib import Path

import torch

from ..common.env import _base_dir, get_device
from . import hub
# Re-exported: callers catch these from here.
from .hub import (DeepFloydUnavailable, HubAccessError, MissingPackageError, NoGPUError,  # noqa: F401
                  hub_error_message, hub_errors, hub_reachable, require_packages)
from .noise_models import EMBEDDING_SHAPE

STAGE_1 = "DeepFloyd/IF-I-XL-v1.0"
STAGE_2 = "DeepFloyd/IF-II-L-v1.0"
EMBEDDINGS_FILE = "prompt_embeds_dict.pth"

# Prompts the notebooks use; section 0 embeds them all so later sections find them in the file.
COURSE_PROMPTS = (
    "",                                              # the null prompt of CFG
    "a high quality photo",                          # §1.3–1.7
    "a rocket ship",                                 # §1.7.3
    "an oil painting of an old man", "an oil painting of people around a campfire",   # §1.8
    "an oil painting of a snowy mountain village", "a photo of a hipster barista",
    "a photo of a dog", "a photo of a man",
    "a lithograph of a skull", "a lithograph of waterfalls",                          # §1.9
    "a pencil", "a photo of the amalfi coast", "a man wearing a hat",
)


_NO_EXTRAS = dict(safety_checker=None, watermarker=None, feature_extractor=None, requires_safety_checker=False)


def _version(package: str) -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version(package).split(".")[:2] if p.isdigit())


def dtype_kwarg(library: str, dtype: torch.dtype) -> dict:
    """``{"dtype": ...}`` where the library takes it, else the older ``{"torch_dtype": ...}``.

    transformers renamed the keyword in 4.56; diffusers followed (its ``_resolve_dtype`` helper
    came with the rename) and warns "torch_dtype is deprecated" on every load when given the old one.
    """
    if library == "transformers":
        return {"dtype" if _version("transformers") >= (4, 56) else "torch_dtype": dtype}
    from diffusers.utils import deprecation_utils

    return {"dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype": dtype}


def _pipeline_device_map(device: torch.device) -> str | None:
    """``device_map`` that puts a pipeline's weights straight on ``device``, if this diffusers can.

    Going through CPU memory first would need the whole fp16 UNet in RAM (8.3 GiB for stage I) on
    top of the kernel: too close to a free Colab's 12.7 GiB (see ``memory_plan``).
    """
    from diffusers.pipelines import pipeline_utils

    return device.type if device.type in getattr(pipeline_utils, "SUPPORTED_DEVICE_MAP", ()) else None


def stage_load_kwargs(device: torch.device) -> dict:
    """from_pretrained arguments of stage I and II: no tokenizer, no T5 (prompts come as
    embeddings; the tokenizer alone would need protobuf), fp16 and straight to the GPU on CUDA."""
    kwargs = dict(tokenizer=None, text_encoder=None, **_NO_EXTRAS)
    if device.type == "cuda":
        kwargs.update(variant="fp16", **dtype_kwarg("diffusers", torch.float16))
        if _pipeline_device_map(device):
            kwargs["device_map"] = _pipeline_device_map(device)
    return kwargs


def text_encoder_load_kwargs(device: torch.device) -> dict:
    """from_pretrained arguments of T5-XXL: on CUDA loaded straight to the GPU (never whole in
    RAM), in 8-bit when bitsandbytes is there (7.7 GiB of weights instead of 11; transformers keeps
    the ``wo`` layers unquantized in fp32 either way)."""
    kwargs = dict(subfolder="text_encoder")
    if device.type == "cuda":
        kwargs.update(variant="fp16", device_map={"": str(device)}, **dtype_kwarg("transformers", torch.float16))
        if importlib.util.find_spec("bitsandbytes") is not None:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    return kwargs


def _from_pretrained(cls, repo: str, **kwargs):
    if not Path(repo).is_dir() and not hub_reachable():
        # Straight to the local cache: asking a dead network costs ~23 s of retries and a line each
        kwargs["local_files_only"] = True
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # our one-line message replaces their warnings
    transformers_logging.set_verbosity_error()
    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()  # "Loading weights" bars would bury the notebook's output
    try:
        return cls.from_pretrained(repo, **kwargs)
    except ImportError as err:
        raise MissingPackageError(f"loading {repo} needs a package that is missing ({err}): "
                                  f"{hub.INSTALL_HINT}, then restart the kernel") from err
    except hub_errors() as err:
        raise HubAccessError(hub_error_message(err, repo)) from err
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])
        for library in (diffusers_logging, transformers_logging):
            library.enable_progress_bar()


def _load_stage(cls, repo: str, device: torch.device):
    require_packages()
    kwargs = stage_load_kwargs(device)
    pipe = _from_pretrained(cls, repo, **kwargs)
    if "device_map" not in kwargs:
        pipe.to(device)
    pipe.set_progress_bar_config(leave=False)
    return pipe


def load_stage_1(device: torch.device | str | None = None, repo: str = STAGE_1):
    """IF stage I (``IFPipeline``) without T5 or tokenizer; fp16 on the GPU with CUDA.

    ``repo`` may be a local folder (the tests use a tiny IF-shaped one)."""
    from diffusers import IFPipeline

    device = torch.device(device) if device is not None else get_device()
    return _load_stage(IFPipeline, repo, device)


def load_stage_2(device: torch.device | str | None = None, repo: str = STAGE_2):
    """IF stage II (``IFSuperResolutionPipeline``, 64 → 256), without T5 or tokenizer."""
    from diffusers import IFSuperResolutionPipeline

    device = torch.device(device) if device is not None else get_device()
    return _load_stage(IFSuperResolutionPipeline, repo, device)


# ---- prompt embeddings

class UnknownPromptError(KeyError):
    """A prompt with no embedding; the message lists the closest known prompts."""

    def __str__(self):
        return self.args[0]


class BadEmbeddingsError(ValueError):
    """An embeddings file or table that DeepFloyd IF cannot use; the message names the fix."""


_REDO = ("delete it and run section 0 again (COMPUTE_EMBEDDINGS = True), or copy the course's "
         f"{EMBEDDINGS_FILE} there")


def check_embeddings(table, source: str = "memory") -> dict[str, torch.Tensor]:
    """``table`` if it is {prompt: T5-XXL hidden states of shape (77, 4096) or (1, 77, 4096)}.

    A wrong width would otherwise pass until deep inside the UNet ("mat1 and mat2 shapes cannot
    be multiplied")."""
    if not isinstance(table, dict):
        raise BadEmbeddingsError(f"{source} holds a {type(table).__name__}, not {{prompt: embedding}}: {_REDO}")
    for prompt, emb in table.items():
        if not isinstance(prompt, str) or not isinstance(emb, torch.Tensor):
            raise BadEmbeddingsError(f"{source} maps {type(prompt).__name__} to {type(emb).__name__}; it "
                                     f"must map prompt text to tensors: {_REDO}")
        shape = tuple(emb.shape[1:] if emb.ndim == 3 and emb.shape[0] == 1 else emb.shape)
        if shape != EMBEDDING_SHAPE or not emb.is_floating_point():
            raise BadEmbeddingsError(
                f"the embedding of {prompt!r} in {source} is {tuple(emb.shape)} {emb.dtype}; DeepFloyd IF "
                f"needs T5-XXL states of shape (1, {EMBEDDING_SHAPE[0]}, {EMBEDDING_SHAPE[1]}) (another text "
                f"encoder's, or a truncated file?): {_REDO}")
    return dict(table)


class PromptEmbeddings:
    """{prompt: (1, 77, 4096) embedding}, indexed by prompt text."""

    def __init__(self, table: dict[str, torch.Tensor], source: str = "memory"):
        self.table, self.source = check_embeddings(table, source), source

    def __getitem__(self, prompt: str) -> torch.Tensor:
        if prompt not in self.table:
            close = difflib.get_close_matches(prompt, list(self.table), n=3, cutoff=0.4)
            hint = f"closest known: {close}" if close else f"{len(self.table)} prompts known"
            raise UnknownPromptError(
                f"no embedding for prompt {prompt!r} in {self.source} ({hint}); add it with "
                "compute_prompt_embeddings([...]) (needs T5, see section 0) or pick a known prompt")
        emb = self.table[prompt]
        return emb if emb.ndim == 3 else emb.unsqueeze(0)

    def __contains__(self, prompt):
        return prompt in self.table

    def __len__(self):
        return len(self.table)

    def prompts(self) -> list[str]:
        return sorted(self.table)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a kernel killed mid-save must not leave a zero-byte file
        tmp = path.with_name(path.name + ".tmp")
        try:
            torch.save({k: v.cpu() for k, v in self.table.items()}, tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PromptEmbeddings":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no prompt embeddings at {path}: compute them in section 0 "
                                    "(COMPUTE_EMBEDDINGS = True) or copy the course's .pth file there")
        if path.stat().st_size == 0:
            raise BadEmbeddingsError(f"{path} is empty (0 bytes; an interrupted save?): {_REDO}")
        try:
            table = torch.load(path, map_location="cpu", weights_only=True)
        except (EOFError, RuntimeError, pickle.UnpicklingError, ValueError, OSError) as err:
            raise BadEmbeddingsError(f"{path} is not a readable embeddings file ({type(err).__name__}: "
                                     f"{str(err).strip()[:80] or 'truncated'}): {_REDO}") from err
        return cls(table, source=str(path))


class PseudoEmbeddings(PromptEmbeddings):
    """The offline backend's embeddings: for ANY prompt, a fixed random (1, 77, 4096) tensor.

    Seeded from a SHA-256 of the prompt text, so a prompt always gets the same tensor on every
    machine; but it carries no meaning: the tiny model cannot tell a dog from a campfire.
    """

    def __init__(self):
        super().__init__({}, source="pseudo-embeddings")

    def __getitem__(self, prompt: str) -> torch.Tensor:
        if prompt not in self.table:
            self.table[prompt] = pseudo_embedding(prompt)
        return self.table[prompt]

    def __contains__(self, prompt):
        return True


def pseudo_embedding(prompt: str, scale: float = 0.1) -> torch.Tensor:
    """A deterministic random (1, 77, 4096) tensor for ``prompt`` (scale roughly T5's)."""
    seed = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "little")
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn((1, *EMBEDDING_SHAPE), generator=generator)


def embeddings_path() -> Path:
    """Where computed embeddings are kept: Drive in Colab (``COURSE_EMBED_DIR`` overrides)."""
    folder = _base_dir("COURSE_EMBED_DIR", "embeddings")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / EMBEDDINGS_FILE


@torch.inference_mode()
def compute_prompt_embeddings(prompts, path: str | Path | None = None,
                              device: torch.device | str | None = None, repo: str = STAGE_1) -> PromptEmbeddings:
    """Embed ``prompts`` with IF's T5-XXL encoder and add them to the ``.pth`` file at ``path``.

    Run it once, in section 0, before stage I is loaded: T5 goes straight to the GPU (8-bit with
    bitsandbytes) and is freed before this returns. Prompts already in the file are not recomputed.
    """
    device = torch.device(device) if device is not None else get_device()
    path = Path(path) if path else embeddings_path()
    table = PromptEmbeddings.load(path) if path.exists() else PromptEmbeddings({}, str(path))
    todo = [p for p in dict.fromkeys(prompts) if p not in table]
    if todo:
        require_packages(text_encoder=True)
        from diffusers import IFPipeline
        from transformers import T5EncoderModel

        text_encoder = _from_pretrained(T5EncoderModel, repo, **text_encoder_load_kwargs(device))
        if "device_map" not in text_encoder_load_kwargs(device):
            text_encoder.to(device)
        # The pipeline only brings the tokenizer and IF's own prompt handling (encode_prompt)
        pipe = _from_pretrained(IFPipeline, repo, text_encoder=text_encoder, unet=None, **_NO_EXTRAS)
        try:
            for prompt in todo:
                emb, _ = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, device=device)
                table.table[prompt] = emb.float().cpu()
        finally:
            del pipe, text_encoder
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        check_embeddings(table.table, "T5's output")
        table.save(path)
    table.source = str(path)
    return table
