"""Part A: which model the notebooks run — DeepFloyd IF, Part B's MNIST model, or a tiny stand-in.

``BACKEND = "auto"`` uses DeepFloyd IF when a CUDA GPU and hub access are there, and otherwise
says why in one line and uses ``"mnist"``: the class-conditioned flow-matching UNet of Part B
(committed in ``course_utils/assets``), whose prompts are digits ("a 3"; "" for none). Every
Part A algorithm runs on it unchanged and its pictures mean something, on any laptop.
``"tiny"`` is a randomly initialised UNet with IF's exact interface: its pictures are noise; it
tests the DeepFloyd code path offline.

Each backend also carries its ``examples``: the prompts, images and pairs each section uses by
default (photos and text for DeepFloyd, digits for MNIST), so a notebook parameter left at
``None`` means "this backend's example".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..common.env import get_device
from ..common.pixels import check_signed_range
from . import deepfloyd, digits
from .images import load_image, resize, test_image
from .noise_models import FlowNoiseModel, NoiseModel, UNetNoiseModel, tiny_if_unet
from .schedule import if_scheduler, strided_timesteps

BACKENDS = ("auto", "deepfloyd", "mnist", "tiny")


@dataclass(frozen=True)
class Examples:
    """What each section uses when its notebook parameter is left at ``None``."""
    test_image: str                 # what ``backend.image("test image")`` is, in words
    prompt: str                     # §1.3–1.6
    my_prompts: tuple               # section 0
    sdedit_prompt: str              # §1.7, §1.7.2
    my_images: tuple                # §1.7 (names for ``backend.image``)
    web_image: str                  # §1.7.1
    text_prompt: str                # §1.7.3
    text_images: tuple              # §1.7.3
    inpaint_targets: tuple          # §1.7.2: (image name, (top, left, height, width))
    anagram_pairs: tuple            # §1.8
    anagram_view: str               # §1.8: a key of ``edits.VIEWS``
    hybrid_pairs: tuple             # §1.9: (seen from afar, seen up close)
    hybrid_kernel: int = 33
    hybrid_sigma: float = 2.0
    cfg_scale: float = 7.0


IF_EXAMPLES = Examples(
    test_image="a rocket on its launch tower (scikit-image), standing in for the Campanile",
    prompt="a high quality photo",
    my_prompts=("a watercolor of a fox in the snow", "a lighthouse on a cliff at sunset",
                "a bowl of ramen, studio photo"),
    sdedit_prompt="a high quality photo",
    my_images=("chelsea", "coffee"),
    web_image="https://upload.wikimedia.org/wikipedia/commons/thumb/6/6e/Golde33443.jpg/320px-Golde33443.jpg",
    text_prompt="a rocket ship",
    text_images=("test image", "chelsea", "astronaut"),
    inpaint_targets=(("test image", (4, 22, 34, 20)), ("chelsea", (10, 30, 24, 24)),
                     ("astronaut", (4, 20, 26, 26))),
    anagram_pairs=(("an oil painting of an old man", "an oil painting of people around a campfire"),
                   ("an oil painting of a snowy mountain village", "a photo of a hipster barista"),
                   ("a photo of a dog", "a photo of a man")),
    anagram_view="flip",
    hybrid_pairs=(("a lithograph of a skull", "a lithograph of waterfalls"),
                  ("a rocket ship", "a pencil"),
                  ("an oil painting of an old man", "a photo of the amalfi coast")),
)

# Digits in place of photos; pairs chosen by their measured success rates (see ``illusions``).
MNIST_EXAMPLES = Examples(
    test_image=f"a held-out MNIST {digits.TEST_DIGIT}",
    prompt=f"a {digits.TEST_DIGIT}",
    my_prompts=("a 0", "a 4", "a 8"),
    sdedit_prompt="",
    my_images=("a 2", "a 5"),
    web_image="typed 4",
    text_prompt="a 7",
    text_images=("a 1", "a 4", "a 9"),
    inpaint_targets=(("test image", (14, 0, 14, 28)), ("a 9", (0, 0, 14, 28)), ("a 3", (0, 0, 28, 14))),
    # re-picked with the digit judge (issue 18; benchmarks/anagram_sweep.py, then 100 seeds each on
    # the cpu profile): 6/7 95%, 8/3 56%, 7/4 56%; 5/3 fell from 96% to 10% (its upright 5s are ε)
    anagram_pairs=(("a 6", "a 7"), ("a 8", "a 3"), ("a 7", "a 4")),
    anagram_view="rotate180",
    # re-measured with the digit judge up close and the 10-px far view (issue 18; benchmarks/hybrid_sweep.py,
    # then 100 seeds each): 5/3 25%, 4/7 25%, 3/2 22%; 4/8 fell to 7%
    hybrid_pairs=(("a 5", "a 3"), ("a 4", "a 7"), ("a 3", "a 2")),
    hybrid_kernel=11,
    hybrid_sigma=1.5,
    cfg_scale=5.0,
)


@dataclass
class Backend:
    name: str                 # "deepfloyd", "mnist" or "tiny"
    model: NoiseModel         # the ε-model behind the NoiseModel interface
    embeddings: object        # prompt → condition: PromptEmbeddings, or DigitPrompts for MNIST
    stage_1: object = field(repr=False)  # IFPipeline (text → 64×64) or, for MNIST, the flow UNet
    device: torch.device = torch.device("cpu")
    reason: str = ""          # why this backend, in one line
    examples: Examples = IF_EXAMPLES
    _stage_2: object = field(default=None, repr=False)
    stage_2_repo: str = deepfloyd.STAGE_2   # a hub name or a local folder

    def embed(self, prompt: str) -> torch.Tensor:
        """The condition of ``prompt`` on the model's device: a (1, 77, 4096) T5 embedding, or for
        MNIST a (1, 10) one-hot digit (all zeros for "")."""
        return self.embeddings[prompt].to(self.device)

    def prompt_for(self, name: str, default: str | None = None) -> str:
        """The prompt an edit of image ``name`` uses by default: for MNIST the image's own digit
        ("a 2" for "a 2", "typed 4" or "drawn 4"; "" when unknown, e.g. a canvas drawing), for
        the other backends ``default`` (the section's neutral prompt)."""
        if self.name != "mnist":
            return default if default is not None else self.examples.sdedit_prompt
        if name == "test image":
            return f"a {digits.TEST_DIGIT}"
        for prefix in ("typed ", "drawn ", ""):
            rest = name[len(prefix):] if name.startswith(prefix) else None
            if rest is not None:
                try:
                    return f"a {digits.parse_digit(rest)}"
                except (KeyError, TypeError):
                    pass
        return ""

    def embed_each(self, prompts) -> torch.Tensor:
        """One condition per prompt, as one batch: (N, 77, 4096) or, for MNIST, (N, 10)."""
        return torch.cat([self.embed(p) for p in prompts])

    def describe(self) -> str:
        return f"backend '{self.name}': {self.reason}"

    @property
    def image_shape(self) -> tuple:
        return tuple(self.model.image_shape)

    def image(self, name: str) -> torch.Tensor:
        """(1, C, H, W) in [-1, 1] at the model's size. "test image" is the course's test image;
        for MNIST a digit prompt ("a 2") gives a held-out MNIST digit, "typed 4" a font digit."""
        if self.name == "mnist":
            return digits.digit_image(name)
        return test_image(self.image_shape[-1]) if name == "test image" else load_image(name, self.image_shape[-1])

    def images(self, names) -> torch.Tensor:
        """``image`` of each name, as one (N, C, H, W) batch."""
        return torch.cat([self.image(name) for name in names])

    def web_image(self, url: str) -> tuple[torch.Tensor, str]:
        """§1.7.1's web image and where it came from; for MNIST, a typed (font) digit instead."""
        if self.name == "mnist":
            return self.image(self.examples.web_image), f"{self.examples.web_image}: a font digit, not handwriting"
        from .images import web_image

        return web_image(url, size=self.image_shape[-1])

    def drawings(self, use_canvas: bool = True) -> dict[str, torch.Tensor]:
        """§1.7.1: two canvas drawings in Colab (digits for MNIST); built-in sketches elsewhere."""
        if self.name == "mnist":
            return digits.drawings(use_canvas)
        from .drawing import drawings

        return drawings(use_canvas, size=self.image_shape[-1])

    @torch.inference_mode()
    def generate(self, prompt: str, num_inference_steps: int, generator: torch.Generator,
                 n: int = 1, guidance_scale: float = 7.0) -> torch.Tensor:
        """Section 0: the model's own sampler, (n, C, H, W) in [-1, 1]: IF's ``IFPipeline``, or
        for MNIST Part B's Euler flow sampler with CFG."""
        if self.name == "mnist":
            return digits.generate(self.stage_1, self.embed(prompt), num_inference_steps, generator, n,
                                   guidance_scale)
        out = self.stage_1(prompt_embeds=self.embed(prompt), negative_prompt_embeds=self.embed(""),
                           num_images_per_prompt=n, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, generator=generator, output_type="pt")
        return out.images.float().cpu()

    @torch.inference_mode()
    def upsample(self, images: torch.Tensor, prompt: str, generator: torch.Generator | None = None,
                 num_inference_steps: int = 50) -> torch.Tensor:
        """64 → 256: IF stage II with DeepFloyd; otherwise a plain bicubic resize to 4× the size."""
        # A sample of the course's loop may overshoot [-1, 1] (by far, for the untrained tiny
        # model): stage II takes [-1, 1], so it is clamped. Pixels in [0, 255] or MNIST digits in
        # [0, 1] (nothing negative) are a caller's mistake, and still an error naming the fix.
        if images.numel() and images.min() >= -0.01:
            check_signed_range(images, "images to upsample")
        images = images.clamp(-1, 1)
        if self.name != "deepfloyd":
            return resize(images, 4 * images.shape[-1])
        if self._stage_2 is None:
            self._stage_2 = deepfloyd.load_stage_2(self.device, self.stage_2_repo)
        n = images.shape[0]
        out = self._stage_2(image=images.to(self.device), prompt_embeds=self.embed(prompt).expand(n, -1, -1),
                            negative_prompt_embeds=self.embed("").expand(n, -1, -1), generator=generator,
                            num_inference_steps=num_inference_steps, output_type="pt")
        return out.images.float().cpu()

    @property
    def upsampler(self) -> str:
        return "IF stage II" if self.name == "deepfloyd" else "bicubic resize (no stage II here)"


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


def mnist_backend(device: torch.device | str = "cpu", reason: str = "", path=None) -> Backend:
    """Part B's class-conditioned flow UNet (the committed one unless ``path``), as an ε-model."""
    from .pretrained import MNIST_FLOW_PATH, load_mnist_flow

    device = torch.device(device)
    unet = load_mnist_flow(path or MNIST_FLOW_PATH, device)
    model = FlowNoiseModel(unet, if_scheduler(variance_type="fixed_small"), device)
    return Backend("mnist", model, digits.DigitPrompts(), unet, device,
                   reason or "Part B's class-conditioned MNIST flow model; prompts are digits",
                   MNIST_EXAMPLES)


def deepfloyd_backend(device: torch.device | str | None = None, embeddings_path=None,
                      repos: tuple[str, str] = (deepfloyd.STAGE_1, deepfloyd.STAGE_2)) -> Backend:
    """DeepFloyd IF stage I with the prompt embeddings stored at ``embeddings_path``.

    ``repos``: stage I and II, hub names or local folders (the tests use tiny IF-shaped ones)."""
    device = torch.device(device) if device is not None else get_device()
    path = embeddings_path or deepfloyd.embeddings_path()
    try:  # before the 9 GB download: a broken file is the user's to fix first
        embeddings = deepfloyd.PromptEmbeddings.load(path)
    except FileNotFoundError:
        embeddings = deepfloyd.PromptEmbeddings({}, source=f"{path} (missing: run section 0)")
    pipe = deepfloyd.load_stage_1(device, repos[0])
    model = UNetNoiseModel(pipe.unet, pipe.scheduler, device=device, dtype=pipe.unet.dtype)
    return Backend("deepfloyd", model, embeddings, pipe, device,
                   f"{deepfloyd.STAGE_1} on {device.type}, {len(embeddings)} prompt embeddings",
                   stage_2_repo=repos[1])


def choose_backend(name: str = "auto", profile=None, device: torch.device | str | None = None):
    """(backend name, why) before anything is loaded: the profile may force one, and "auto"
    picks DeepFloyd only with a CUDA GPU and its packages (hub access is checked when loading)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    device = torch.device(device) if device is not None else get_device()
    forced = getattr(profile, "if_backend", None)
    if forced and forced != name:
        return forced, f"profile '{profile.name}' always uses the {forced} model"
    if name == "tiny":
        return "tiny", "BACKEND='tiny': random IF-shaped UNet, images are noise"
    if name == "mnist":
        return "mnist", "BACKEND='mnist': Part B's class-conditioned MNIST flow model; prompts are digits"
    if name == "auto" and device.type != "cuda":
        return "mnist", (f"no CUDA GPU ({device.type}); DeepFloyd IF needs one (Colab T4 or better), "
                         "so using Part B's MNIST model (prompts are digits: \"a 3\")")
    if name == "auto" and deepfloyd.hub.missing_packages():
        return "mnist", (f"DeepFloyd IF's packages are not installed ({', '.join(deepfloyd.hub.missing_packages())}: "
                         f"{deepfloyd.hub.INSTALL_HINT}), so using Part B's MNIST model (prompts are digits)")
    return "deepfloyd", ""


def load_backend(name: str = "auto", profile=None, device: torch.device | str | None = None,
                 seed: int = 0, embeddings_path=None) -> Backend:
    """``"deepfloyd"``, ``"mnist"``, ``"tiny"`` or ``"auto"``; a profile with ``if_backend`` set
    overrides it. "auto" falls back to "mnist" with a one-line reason when DeepFloyd cannot be loaded.
    """
    device = torch.device(device) if device is not None else get_device()
    chosen, reason = choose_backend(name, profile, device)
    widths = getattr(profile, "if_tiny_widths", None)
    tiny_kw = dict(block_out_channels=tuple(widths)) if widths else {}
    if chosen == "tiny":
        return tiny_backend(device, seed, reason, **tiny_kw)
    if chosen == "mnist":
        return mnist_backend(device, reason)
    try:
        deepfloyd.hub.require_gpu(device)
        deepfloyd.require_packages()
        return deepfloyd_backend(device, embeddings_path)
    except deepfloyd.DeepFloydUnavailable as err:
        if name == "deepfloyd":
            raise
        return mnist_backend(device, f"DeepFloyd unavailable: {err}; using Part B's MNIST model "
                                     "(prompts are digits)")


def prepare_embeddings(prompts, backend: str = "auto", profile=None, compute: bool = True,
                       device: torch.device | str | None = None, path=None) -> str:
    """Section 0: make sure every prompt has a T5 embedding in the ``.pth`` file; one line back.

    Runs T5 only for the DeepFloyd backend, only for prompts not yet in the file, and before
    stage I is loaded (T5 and stage I together do not fit in a Colab's memory).
    """
    chosen, reason = choose_backend(backend, profile, device)
    if chosen == "tiny":
        return f"{reason}: prompts get pseudo-embeddings (fixed random tensors, no meaning)"
    if chosen == "mnist":
        return f"{reason}: digit prompts are one-hot vectors, no text encoder needed"
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
            deepfloyd.hub.require_gpu(torch.device(device) if device is not None else get_device())
            table = deepfloyd.compute_prompt_embeddings(missing, path, device)
        except deepfloyd.DeepFloydUnavailable as err:
            if backend == "deepfloyd":
                raise
            return f"T5 unavailable ({err}); the notebooks will fall back to the MNIST model"
    return f"{len(table)} prompt embeddings in {path} ({len(missing)} computed now)"


def timesteps_for(profile) -> list[int]:
    """The strided timesteps of this profile (990, 960, ..., 0 unless the profile sets a stride)."""
    stride = getattr(profile, "if_stride", 30)
    return strided_timesteps(990 - 990 % stride, stride)


def backend_image(name: str, backend: str = "auto", profile=None, device=None) -> tuple[torch.Tensor, str]:
    """(image, what it is) for the backend ``backend`` resolves to, without loading a model:
    §1.1–1.2 need only the picture (a photo at 64×64, or for MNIST a 28×28 digit)."""
    chosen, _ = choose_backend(backend, profile, device)
    examples = MNIST_EXAMPLES if chosen == "mnist" else IF_EXAMPLES
    what = examples.test_image if name == "test image" else name
    if chosen == "mnist":
        return digits.digit_image(name), what
    return (test_image() if name == "test image" else load_image(name)), what
