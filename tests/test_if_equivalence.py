"""The course's sampler is what diffusers' IFPipeline computes, up to three documented choices.

The course's ``denoise_loop`` follows the handout: no thresholding of x̂0, no noise on the step
that lands on t = 0, and no step beyond it. IF's pipeline (DDPMScheduler.step) thresholds x̂0
dynamically, adds the variance on every step from t > 0, and takes one more step at t = 0 that
returns the thresholded x̂0. Switching those three on, through the loop's own hooks (an ``eps_fn``
wrapper and ``after_step``), must give IFPipeline's output for the same UNet and generator.

Compared in float64 (UNet, states, embeddings; the noise drawn in float32 by both): what is left
(~8e-7) is the float32 rounding of the schedule's coefficients, which diffusers keeps in float32
and the two sides combine in a different order. In float32 throughout, the same comparison
differs by ~1.5e-5 on states up to 10 at guidance 7: a few ulps per step, multiplied by CFG.
"""
import pytest
import torch
from diffusers import IFPipeline

from course_utils.part_a import diffusion
from course_utils.part_a.deepfloyd import pseudo_embedding
from course_utils.part_a.noise_models import NoiseModel, tiny_if_unet
from course_utils.part_a.schedule import if_scheduler, strided_timesteps

TIMESTEPS = strided_timesteps(990, 110)   # 990, 880, ..., 0: ten steps keep it fast


class Float64UNet(NoiseModel):
    """``UNetNoiseModel`` without its cast of ε̂ to float32."""

    def __init__(self, unet):
        self.unet, self.scheduler = unet, if_scheduler()

    def __call__(self, x_t, t, cond):
        cond = cond.expand(x_t.shape[0], *cond.shape[1:])
        return self.unet(x_t, int(t), encoder_hidden_states=cond).sample.split(3, dim=1)


def thresholded(eps_fn, scheduler):
    """ε̂ rewritten so that the loop's x̂0 = (x − √(1−ᾱ) ε̂)/√ᾱ is IF's dynamically thresholded x̂0."""
    def eps_thresholded(x, t):
        eps, variance = eps_fn(x, t)
        a = scheduler.alphas_cumprod[int(t)].to(x.dtype)
        x0 = scheduler._threshold_sample(diffusion.estimate_x0(x, t, eps, scheduler.alphas_cumprod.to(x.dtype)))
        return (x - a.sqrt() * x0) / (1 - a).sqrt(), variance
    return eps_thresholded


def course_loop_as_if_pipeline(model, x, cond, uncond, scale, generator):
    scheduler = model.scheduler
    last = {}

    def eps_fn(x, t):  # remember the variance of the step about to land on t' = 0
        last["t"], (eps, last["variance"]) = t, diffusion.cfg_eps(model, cond, uncond, scale)(x, t)
        return eps, last["variance"]

    def after_step(x, t_prev):
        if t_prev != 0:
            return x
        # IF adds noise on this step too (t > 0), then takes a last step at t = 0: x̂0 itself
        t_last = last["t"]
        x = diffusion.add_jump_variance(scheduler.alphas_cumprod, t_last, int(scheduler.previous_timestep(t_last)),
                                        last["variance"], x, generator)
        eps, _ = eps_fn(x, 0)
        return scheduler._threshold_sample(diffusion.estimate_x0(x, 0, eps, scheduler.alphas_cumprod.to(x.dtype)))

    return diffusion.denoise_loop(thresholded(eps_fn, scheduler), x, 0, scheduler, TIMESTEPS, generator,
                                  after_step=after_step, progress=False)


@pytest.fixture
def float32_noise(monkeypatch):
    """The pipeline draws its noise as the course does (float32, then cast), so that a float64 run
    of both sees the same numbers; in float32 this changes nothing."""
    import diffusers.pipelines.deepfloyd_if.pipeline_if as pipeline_if
    import diffusers.schedulers.scheduling_ddpm as scheduling_ddpm

    def randn_tensor(shape, generator=None, device=None, dtype=None, **_):
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype)

    for module in (pipeline_if, scheduling_ddpm):
        monkeypatch.setattr(module, "randn_tensor", randn_tensor)


@pytest.mark.parametrize("scale", [7.0, 1.5])
def test_course_loop_equals_if_pipeline(scale, float32_noise):
    unet = tiny_if_unet(seed=3).double()
    cond, uncond = pseudo_embedding("a photo of a dog").double(), pseudo_embedding("").double()
    pipe = IFPipeline(tokenizer=None, text_encoder=None, unet=unet, scheduler=if_scheduler(),
                      safety_checker=None, feature_extractor=None, watermarker=None,
                      requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        theirs = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, timesteps=TIMESTEPS,
                      guidance_scale=scale, generator=torch.Generator().manual_seed(0),
                      output_type="pt").images

        model = Float64UNet(unet)
        generator = torch.Generator().manual_seed(0)
        x = diffusion.pure_noise(1, generator).double()  # the pipeline's first draw
        ours = course_loop_as_if_pipeline(model, x, cond, uncond, scale, generator)
        plain = diffusion.denoise_loop(diffusion.cfg_eps(model, cond, uncond, scale),
                                       diffusion.pure_noise(1, torch.Generator().manual_seed(0)).double(), 0,
                                       model.scheduler, TIMESTEPS, torch.Generator().manual_seed(0),
                                       progress=False)

    assert theirs.dtype == ours.dtype == torch.float64
    diff = (ours - theirs).abs().max().item()
    print(f"guidance {scale}: max |course − IFPipeline| = {diff:.1e} (images up to {theirs.abs().max():.2f})")
    assert diff <= 1e-5
    # The switches matter: without them the loop is the handout's, and visibly different
    assert (plain - theirs).abs().max().item() > 1e-2
