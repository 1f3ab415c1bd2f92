"""Part A: which model the notebooks run — DeepFloyd IF, or the tiny offline stand-in.

``BACKEND = "auto"`` uses DeepFloyd IF when a CUDA GPU and hub access are there, and otherwise
says why in one line and uses ``"tiny"``: a randomly initialised UNet with IF's interface and
IF's scheduler. The tiny model runs every algorithm exactly as DeepFloyd would, but has learned
nothing, so its pictures are noise; it exists so that the notebooks run anywhere, and as tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import deepfloyd
from .env import get_device
from .images import resize
from .noise_models import NoiseModel, UNetNoiseModel, tiny_if_unet
from .schedule import if_scheduler, strided_timesteps

BACKENDS = ("auto", "deepfloyd", "tiny")


@dataclass
class Backend:
    name: str                 # "deepfloyd" or "tiny"
    model: NoiseModel         # stage I's UNet behind the NoiseModel interface
    embeddings: deepfloyd.PromptEmbeddings
    stage_1: object = field(repr=False)  # an IFPipeline (text → 64×64), for section 0
    device: torch.device = torch.device("cpu")
    reason: str = ""          # why this backend, in one line
    _stage_2: object = field(default=None, repr=False)

    def embed(self, prompt: str) -> torch.Tensor:
        """The (1, 77, 4096) embedding of ``prompt``, on the model's device."""
        return self.embeddings[prompt].to(self.device)

    def describe(self) -> str:
        return f"backend '{self.name}': {self.reason}"

    @torch.inference_mode()
    def generate(self, prompt: str, num_inference_steps: int, generator: torch.Generator,
                 n: int = 1, guidance_scale: float = 7.0) -> torch.Tensor:
        """Section 0: stage I's own sampler (``IFPipeline``); (n, 3, 64, 64) in [-1, 1]."""
        out = self.stage_1(prompt_embeds=self.embed(prompt), negative_prompt_embeds=self.embed(""),
                           num_images_per_prompt=n, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, generator=generator, output_type="pt")
        return out.images.float().cpu()

    @torch.inference_mode()
    def upsample(self, images: torch.Tensor, prompt: str, generator: torch.Generator | None = None,
                 num_inference_steps: int = 50) -> torch.Tensor:
        """64 → 256: IF stage II with DeepFloyd; with the tiny backend a plain bicubic resize."""
        if self.name != "deepfloyd":
            return resize(images, 256)
        if self._stage_2 is None:
            self._stage_2 = deepfloyd.load_stage_2(self.device)
        n = images.shape[0]
        out = self._stage_2(image=images.to(self.device), prompt_embeds=self.embed(prompt).expand(n, -1, -1),
                            negative_prompt_embeds=self.embed("").expand(n, -1, -1), generator=generator,
                            num_inference_steps=num_inference_steps, output_type="pt")
        return out.images.float().cpu()

    @property
    def upsampler(self) -> str:
        return "IF stage II" if self.name == "deepfloyd" else "bicubic resize (no stage II offline)"


def tiny_backend(device: torch.device | str = "cpu", seed: int = 0, reason: str = "",
                 **unet_overrides) -> Backend:
    """The offline backend: tiny IF-shaped UNet, IF's scheduler, pseudo-embeddings."""
    from diffusers import IFPipeline

    device = torch.device(device)
    unet = tiny_if_unet(seed, **unet_overrides).to(device)
    scheduler = if_scheduler()
    pipe = IFPipeline(tokenizer=None, text_encoder=None, unet=unet, scheduler=scheduler,
                      safety_checker=None, feature_extractor=None, watermarker=None,
                      requires_safety_checker=False)
    pipe.set_progress_bar_config(leave=False)
    return Backend("tiny", UNetNoiseModel(unet, scheduler, device), deepfloyd.PseudoEmbeddings(),
                   pipe, device, reason or "tiny random IF-shaped UNet (offline; images are noise)")


def deepfloyd_backend(device: torch.device | str | None = None, embeddings_path=None) -> Backend:
    """DeepFloyd IF stage I with the prompt embeddings stored at ``embeddings_path``."""
    device = torch.device(device) if device is not None else get_device()
    pipe = deepfloyd.load_stage_1(device)
    path = embeddings_path or deepfloyd.embeddings_path()
    try:
        embeddings = deepfloyd.PromptEmbeddings.load(path)
    except FileNotFoundError:
        embeddings = deepfloyd.PromptEmbeddings({}, source=f"{path} (missing: run section 0)")
    model = UNetNoiseModel(pipe.unet, pipe.scheduler, device=device, dtype=pipe.unet.dtype)
    return Backend("deepfloyd", model, embeddings, pipe, device,
                   f"{deepfloyd.STAGE_1} on {device.type}, {len(embeddings)} prompt embeddings")


def choose_backend(name: str = "auto", profile=None, device: torch.device | str | None = None):
    """(backend name, why) before anything is loaded: the profile may force one, and "auto"
    picks DeepFloyd only with a CUDA GPU (hub access is checked when loading)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    device = torch.device(device) if device is not None else get_device()
    forced = getattr(profile, "if_backend", None)
    if forced and forced != name:
        return forced, f"profile '{profile.name}' always uses the {forced} model"
    if name == "tiny":
        return "tiny", "BACKEND='tiny': random IF-shaped UNet, images are noise"
    if name == "auto" and device.type != "cuda":
        return "tiny", (f"no CUDA GPU ({device.type}); DeepFloyd IF needs one (Colab T4 or better), "
                        "so using the tiny offline model (images are noise)")
    return "deepfloyd", ""


def load_backend(name: str = "auto", profile=None, device: torch.device | str | None = None,
                 seed: int = 0, embeddings_path=None) -> Backend:
    """``"deepfloyd"``, ``"tiny"`` or ``"auto"``; a profile with ``if_backend`` set overrides it.

    "auto" falls back to "tiny" with a one-line reason when DeepFloyd cannot be loaded.
    """
    device = torch.device(device) if device is not None else get_device()
    chosen, reason = choose_backend(name, profile, device)
    widths = getattr(profile, "if_tiny_widths", None)
    tiny_kw = dict(block_out_channels=tuple(widths)) if widths else {}
    if chosen == "tiny":
        return tiny_backend(device, seed, reason, **tiny_kw)
    try:
        return deepfloyd_backend(device, embeddings_path)
    except deepfloyd.HubAccessError as err:
        if name == "deepfloyd":
            raise
        return tiny_backend(device, seed, f"DeepFloyd unavailable: {err}; using the tiny offline model",
                            **tiny_kw)


def prepare_embeddings(prompts, backend: str = "auto", profile=None, compute: bool = True,
                       device: torch.device | str | None = None, path=None) -> str:
    """Section 0: make sure every prompt has a T5 embedding in the ``.pth`` file; one line back.

    Runs T5 only for the DeepFloyd backend, only for prompts not yet in the file, and before
    stage I is loaded (T5 and stage I together do not fit in a Colab's memory).
    """
    chosen, reason = choose_backend(backend, profile, device)
    if chosen == "tiny":
        return f"{reason}: prompts get pseudo-embeddings (fixed random tensors, no meaning)"
    path = path or deepfloyd.embeddings_path()
    try:
        table = deepfloyd.PromptEmbeddings.load(path)
    except FileNotFoundError:
        table = deepfloyd.PromptEmbeddings({}, str(path))
    missing = [p for p in dict.fromkeys(prompts) if p not in table]
    if missing and not compute:
        return (f"{len(missing)} prompts have no embedding in {path} (e.g. {missing[0]!r}); "
                "set COMPUTE_EMBEDDINGS = True to run T5 for them")
    if missing:
        try:
            table = deepfloyd.compute_prompt_embeddings(missing, path, device)
        except deepfloyd.HubAccessError as err:
            if backend == "deepfloyd":
                raise
            return f"T5 unavailable ({err}); the notebooks will fall back to the tiny model"
    return f"{len(table)} prompt embeddings in {path} ({len(missing)} computed now)"


def timesteps_for(profile) -> list[int]:
    """The strided timesteps of this profile (990, 960, ..., 0 unless the profile sets a stride)."""
    stride = getattr(profile, "if_stride", 30)
    return strided_timesteps(990 - 990 % stride, stride)
