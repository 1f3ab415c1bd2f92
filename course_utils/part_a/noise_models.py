"""Part A: the one interface every algorithm is written against, and the models behind it.

A noise model maps (x_t, t, condition) to (ε̂, predicted variance or None). DeepFloyd IF's UNet,
a tiny randomly initialised UNet of the same shape (the offline backend), Part B's MNIST
flow-matching UNet (``FlowNoiseModel``) and an oracle that knows the clean image all fit it, so the
sampling code never mentions DeepFloyd.
"""
from __future__ import annotations

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from ..common.batching import chunked_forward
from .schedule import check_timestep, if_scheduler

IMAGE_SHAPE = (3, 64, 64)    # stage I works on 3×64×64 images in [-1, 1]
EMBEDDING_SHAPE = (77, 4096)  # T5-XXL hidden states: 77 tokens × 4096 features


class NoiseModel:
    """ε-prediction model: ``model(x_t, t, cond) -> (eps, variance or None)``.

    ``x_t`` is (B, C, H, W), ``t`` an integer timestep, ``cond`` a prompt embedding (1 or B, 77,
    4096) or, for MNIST, a one-hot digit (1 or B, 10; zeros for no digit). ``variance`` is the
    model's learned-range output (one value per pixel, roughly in [-1, 1]) or None when the model
    predicts none (then the sampler uses the fixed posterior variance). ``scheduler`` supplies ᾱ_t.
    """

    scheduler: DDPMScheduler
    image_shape: tuple = IMAGE_SHAPE

    def __call__(self, x_t: torch.Tensor, t: int, cond: torch.Tensor | None):
        raise NotImplementedError

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return self.scheduler.alphas_cumprod


def _shape(cond) -> str:
    if isinstance(cond, torch.Tensor):
        return f"shape {tuple(cond.shape)}"
    return "None" if cond is None else f"a {type(cond).__name__}"


def _batch_ok(cond: torch.Tensor, x_t: torch.Tensor) -> bool:
    return cond.shape[0] in (1, x_t.shape[0])


def check_t5_condition(cond, x_t: torch.Tensor, features: int = EMBEDDING_SHAPE[1]) -> torch.Tensor:
    """IF's condition: a T5 prompt embedding (1 or B, 77, 4096), checked before the UNet sees it."""
    want = f"(1 or {x_t.shape[0]}, {EMBEDDING_SHAPE[0]}, {features})"
    if isinstance(cond, torch.Tensor) and cond.ndim == 2 and cond.shape[-1] == 10:
        raise ValueError(
            f"this condition ({_shape(cond)}) is an MNIST one-hot digit, the MNIST backend's; this "
            f"model is DeepFloyd IF's UNet (backend 'deepfloyd' or 'tiny'), which takes a T5 prompt "
            f"embedding {want}: get one with backend.embed(\"a photo of a dog\") from the same backend "
            "as the model (or load the MNIST backend for digits)")
    if not isinstance(cond, torch.Tensor) or cond.ndim != 3 or cond.shape[-1] != features \
            or not _batch_ok(cond, x_t):
        raise ValueError(
            f"the condition must be a T5 prompt embedding {want} for DeepFloyd IF's UNet, got "
            f"{_shape(cond)}; get one with backend.embed(prompt) (\"\" for the unconditional one), "
            "one for all images (batch 1) or one per image")
    return cond


def check_digit_condition(cond, x_t: torch.Tensor, num_classes: int = 10) -> torch.Tensor | None:
    """The MNIST model's condition: a one-hot digit (1 or B, 10), zeros (or None) for no digit."""
    want = f"(1 or {x_t.shape[0]}, {num_classes})"
    if cond is None:
        return None
    if isinstance(cond, torch.Tensor) and cond.ndim == 3 and cond.shape[-1] == EMBEDDING_SHAPE[1]:
        raise ValueError(
            f"this condition ({_shape(cond)}) is a T5 prompt embedding, DeepFloyd IF's; this model "
            f"is the MNIST backend's flow UNet, which takes a one-hot digit {want}: get one with "
            "backend.embed(\"a 3\") from the same backend as the model (\"\" for no digit)")
    if not isinstance(cond, torch.Tensor) or cond.ndim != 2 or cond.shape[-1] != num_classes \
            or not _batch_ok(cond, x_t):
        raise ValueError(
            f"the condition must be a one-hot digit {want} for the MNIST backend's model, got "
            f"{_shape(cond)}; get one with backend.embed(\"a 3\") (\"\" for no digit: all zeros)")
    return cond


class UNetNoiseModel(NoiseModel):
    """Any IF-shaped ``UNet2DConditionModel`` (3 channels in, 6 out: ε̂ then variance)."""

    def __init__(self, unet: UNet2DConditionModel, scheduler: DDPMScheduler,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        self.unet, self.scheduler = unet, scheduler
        # With model CPU offload the UNet's parameters sit on the CPU between calls, so the
        # device the inputs go to is given explicitly rather than read from the UNet.
        self.device = torch.device(device) if device is not None else unet.device
        self.dtype = dtype or unet.dtype

    @torch.inference_mode()
    def __call__(self, x_t, t, cond):
        config = getattr(self.unet, "config", None)
        features = getattr(config, "encoder_hid_dim", None) or getattr(config, "cross_attention_dim", None)
        check_t5_condition(cond, x_t, features or EMBEDDING_SHAPE[1])
        if x_t.ndim != 4 or x_t.shape[1] != 3:
            raise ValueError(f"x_t must be (B, 3, H, W) for DeepFloyd IF's UNet, got {tuple(x_t.shape)}"
                             + ("; (B, 1, 28, 28) images are the MNIST backend's" if x_t.ndim == 4 and
                                x_t.shape[1] == 1 else ""))
        t = check_timestep(t, len(self.alphas_cumprod))
        if cond.shape[0] == 1 and x_t.shape[0] > 1:
            cond = cond.expand(x_t.shape[0], *cond.shape[1:])
        out = self.unet(x_t.to(self.device, self.dtype), int(t),
                        encoder_hidden_states=cond.to(self.device, self.dtype)).sample
        eps, variance = out.float().to(x_t.device).split(3, dim=1)
        return eps, variance


class OracleNoiseModel(NoiseModel):
    """Returns the exact noise of a known clean image: ε = (x_t − √ᾱ_t x_0)/√(1 − ᾱ_t).

    A perfect denoiser for one image, for tests and for seeing what the formulas do when ε̂ is
    right. Ignores the condition; predicts no variance.
    """

    def __init__(self, x0: torch.Tensor, scheduler: DDPMScheduler | None = None):
        self.x0 = x0
        self.scheduler = scheduler or if_scheduler()
        self.image_shape = tuple(x0.shape[1:])

    def __call__(self, x_t, t, cond=None):
        a = self.alphas_cumprod[int(t)].to(x_t.dtype)
        x0 = self.x0.repeat(x_t.shape[0] // self.x0.shape[0], 1, 1, 1)  # CFG doubles the batch
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt(), None


# IF's UNet interface at toy width. The block types, group-norm cross attention, scale-shift
# time conditioning and GELU follow diffusers' convert_if.py (create_unet_diffusers_config) and
# its IF test fixtures (tests/pipelines/deepfloyd_if/__init__.py). IF-I-XL is far wider (block
# widths in the thousands, 4.3B parameters). One deliberate difference: IF also pools the T5
# states into the time embedding (addition_embed_type="text"); at 4096 features that pooling
# alone is 50M parameters and dominates CPU time, so the tiny model leaves it out.
TINY_UNET_CONFIG = dict(
    sample_size=64,
    in_channels=3,
    out_channels=6,
    layers_per_block=1,
    block_out_channels=(16, 16, 32),
    down_block_types=("ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D"),
    encoder_hid_dim=EMBEDDING_SHAPE[1],   # takes IF-shaped T5 embeddings, projected to cross_attention_dim
    cross_attention_dim=32,
    attention_head_dim=16,
    cross_attention_norm="group_norm",
    resnet_time_scale_shift="scale_shift",
    act_fn="gelu",
    norm_num_groups=16,
)


def tiny_if_unet(seed: int = 0, **overrides) -> UNet2DConditionModel:
    """A randomly initialised (seeded) UNet with IF stage I's interface; it has learned nothing."""
    config = {**TINY_UNET_CONFIG, **overrides}
    widths = config["block_out_channels"]
    config["norm_num_groups"] = min(config["norm_num_groups"], *widths)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DConditionModel(**config).eval()


def tiny_noise_model(seed: int = 0, device: torch.device | str = "cpu", **overrides) -> UNetNoiseModel:
    """The offline backend's noise model: ``tiny_if_unet`` with IF's scheduler."""
    unet = tiny_if_unet(seed, **overrides).to(device)
    return UNetNoiseModel(unet, if_scheduler(), device=device)


class FlowNoiseModel(NoiseModel):
    """ε̂ on IF's discrete schedule from Part B's class-conditioned flow-matching velocity.

    Part B's path is z_s = s·x + (1 − s)·ε with x ∈ [0, 1] and target velocity v = x − ε. Part A
    works on y = 2x − 1 ∈ [-1, 1], so IF's forward process gives
    x_t = √ᾱ_t y + √(1 − ᾱ_t) ε = 2√ᾱ_t x − √ᾱ_t + √(1 − ᾱ_t) ε. With a = √ᾱ_t, b = √(1 − ᾱ_t):

        z = (x_t + a) / (2a + b) = s·x + (1 − s)·ε,   s = 2a / (2a + b),

    the same ε on the flow's path at time s. Since z − s·v = s·x + (1 − s)ε − s·x + s·ε = ε,

        ε̂ = z − s·v̂(z, s, c).

    No division by a small number appears anywhere, so this is well conditioned for every t.
    The model predicts no variance: sampling uses the scheduler's fixed posterior variance.
    """

    image_shape = (1, 28, 28)

    def __init__(self, unet: torch.nn.Module, scheduler: DDPMScheduler | None = None,
                 device: torch.device | str | None = None):
        self.unet = unet.eval()
        self.scheduler = scheduler or if_scheduler(variance_type="fixed_small")
        self.device = torch.device(device) if device is not None else next(unet.parameters()).device

    def flow_time(self, t: int) -> tuple[float, float]:
        """(s, 2a + b): the flow time of IF timestep t and the rescaling of x_t."""
        a_bar = self.alphas_cumprod[int(t)].double()
        a, b = a_bar.sqrt(), (1 - a_bar).sqrt()
        return float(2 * a / (2 * a + b)), float(2 * a + b)

    @torch.inference_mode()
    def __call__(self, x_t, t, cond):
        check_digit_condition(cond, x_t, getattr(self.unet, "num_classes", 10))
        if x_t.ndim != 4 or tuple(x_t.shape[1:]) != self.image_shape:
            raise ValueError(f"x_t must be (B, 1, 28, 28) in [-1, 1] for the MNIST model, got {tuple(x_t.shape)}"
                             + ("; (B, 3, H, W) images are DeepFloyd IF's" if x_t.ndim == 4 and
                                x_t.shape[1] == 3 else ""))
        t = check_timestep(t, len(self.alphas_cumprod))
        s, scale = self.flow_time(t)
        a = self.alphas_cumprod[int(t)].sqrt().item()
        z = (x_t.to(self.device) + a) / scale
        c = cond.to(self.device, z.dtype).expand(z.shape[0], -1) if cond is not None else None
        v = chunked_forward(self.unet, z, s, c)
        return (z - s * v).to(x_t.device), None
