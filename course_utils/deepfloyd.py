"""Part A: loading DeepFloyd IF through ``diffusers``, and prompt embeddings.

Stage I (``IF-I-XL-v1.0``, 64×64) and stage II (``IF-II-L-v1.0``, 64 → 256) are gated on the
Hugging Face hub: accept the licence on each model page, then log in (``huggingface_hub.login()``
or the ``HF_TOKEN`` variable). The UNets are loaded without the 4.7B-parameter T5 text encoder;
prompts come in as embeddings, computed once with T5 (``compute_prompt_embeddings``) and kept in
a ``.pth`` file {prompt: (1, 77, 4096) tensor}.
"""
from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

import torch

from .env import _base_dir, get_device
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


class HubAccessError(RuntimeError):
    """DeepFloyd IF could not be loaded from the hub (no token, licence not accepted, offline)."""


def _error_chain(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def hub_error_message(err: BaseException, repo: str = STAGE_1) -> str:
    """One line that says why ``repo`` could not be loaded and what to do about it."""
    fix = (f"accept the licence at https://huggingface.co/{repo} and log in with "
           "huggingface_hub.login() or set HF_TOKEN")
    names = [type(e).__name__ for e in _error_chain(err)]
    text = " ".join(str(e) for e in _error_chain(err)).lower()
    if "GatedRepoError" in names or "gated repo" in text:
        return f"{repo} is gated and this account has no access yet: {fix}"
    if "RepositoryNotFoundError" in names or "401" in text:
        return f"{repo} is not visible without a valid token: {fix}"
    if ("LocalEntryNotFoundError" in names or "OfflineModeIsEnabled" in names or "cached" in text
            or "offline" in text):
        return (f"{repo} is not in the local cache and could not be downloaded (offline, or no "
                f"access): connect to the internet, {fix}")
    if any(n in names for n in ("ConnectionError", "TimeoutError", "ConnectTimeout")):
        return f"cannot reach the Hugging Face hub for {repo}: check the connection, then {fix}"
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"could not load {repo} ({names[0]}: {first_line[:160]}); {fix}"


def _hub_errors() -> tuple[type, ...]:
    errors: list[type] = [OSError, ConnectionError, TimeoutError, ValueError]
    try:
        from huggingface_hub import errors as hf_errors
        errors += [getattr(hf_errors, n) for n in ("GatedRepoError", "RepositoryNotFoundError",
                                                   "LocalEntryNotFoundError", "HfHubHTTPError")
                   if hasattr(hf_errors, n)]
    except ImportError:
        pass
    try:  # huggingface_hub < 1.0 speaks requests
        import requests
        errors.append(requests.exceptions.RequestException)
    except ImportError:
        pass
    try:  # huggingface_hub >= 1.0 speaks httpx
        import httpx
        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


def _from_pretrained(cls, repo: str, device: torch.device, **kwargs):
    fp16 = device.type == "cuda"
    if fp16:
        kwargs.update(variant="fp16", torch_dtype=torch.float16)
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # our one-line message replaces its warnings
    try:
        return cls.from_pretrained(repo, **kwargs)
    except _hub_errors() as err:
        raise HubAccessError(hub_error_message(err, repo)) from err
    finally:
        diffusers_logging.set_verbosity(verbosity)


def _save_memory(pipe, device: torch.device):
    """On a GPU keep only the running model in GPU memory (a T4 has 15 GB; IF-I-XL is 4.3B)."""
    if device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(leave=False)
    return pipe


def load_stage_1(device: torch.device | str | None = None, text_encoder: bool = False):
    """IF stage I (``IFPipeline``): fp16 weights and CPU offload on a GPU, no T5 unless asked."""
    from diffusers import IFPipeline

    device = torch.device(device) if device is not None else get_device()
    extra = {} if text_encoder else dict(text_encoder=None)
    pipe = _from_pretrained(IFPipeline, STAGE_1, device, safety_checker=None, watermarker=None,
                            feature_extractor=None, requires_safety_checker=False, **extra)
    return _save_memory(pipe, device)


def load_stage_2(device: torch.device | str | None = None):
    """IF stage II (``IFSuperResolutionPipeline``, 64 → 256), without T5."""
    from diffusers import IFSuperResolutionPipeline

    device = torch.device(device) if device is not None else get_device()
    pipe = _from_pretrained(IFSuperResolutionPipeline, STAGE_2, device, text_encoder=None,
                            safety_checker=None, watermarker=None, feature_extractor=None,
                            requires_safety_checker=False)
    return _save_memory(pipe, device)


# ---- prompt embeddings

class UnknownPromptError(KeyError):
    """A prompt with no embedding; the message lists the closest known prompts."""

    def __str__(self):
        return self.args[0]


class PromptEmbeddings:
    """{prompt: (1, 77, 4096) embedding}, indexed by prompt text."""

    def __init__(self, table: dict[str, torch.Tensor], source: str = "memory"):
        self.table, self.source = dict(table), source

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
        torch.save({k: v.cpu() for k, v in self.table.items()}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PromptEmbeddings":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no prompt embeddings at {path}: compute them in section 0 "
                                    "(COMPUTE_EMBEDDINGS = True) or copy the course's .pth file there")
        return cls(torch.load(path, map_location="cpu", weights_only=True), source=str(path))


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
                              device: torch.device | str | None = None) -> PromptEmbeddings:
    """Embed ``prompts`` with IF's T5-XXL encoder and add them to the ``.pth`` file at ``path``.

    Memory-hungry (T5-XXL is 4.7B parameters, about 10 GB in fp16): run it once, in section 0;
    the encoder is freed afterwards. Prompts already in the file are not recomputed.
    """
    from transformers import T5EncoderModel

    device = torch.device(device) if device is not None else get_device()
    path = Path(path) if path else embeddings_path()
    table = PromptEmbeddings.load(path) if path.exists() else PromptEmbeddings({}, str(path))
    todo = [p for p in dict.fromkeys(prompts) if p not in table]
    if todo:
        from diffusers import IFPipeline

        text_encoder = _from_pretrained(T5EncoderModel, STAGE_1, device, subfolder="text_encoder")
        pipe = _from_pretrained(IFPipeline, STAGE_1, device, text_encoder=text_encoder, unet=None,
                                safety_checker=None, watermarker=None, feature_extractor=None,
                                requires_safety_checker=False)
        _save_memory(pipe, device)
        for prompt in todo:
            emb, _ = pipe.encode_prompt(prompt, do_classifier_free_guidance=False, device=device)
            table.table[prompt] = emb.float().cpu()
        del pipe, text_encoder
        if device.type == "cuda":
            torch.cuda.empty_cache()
        table.save(path)
    table.source = str(path)
    return table
