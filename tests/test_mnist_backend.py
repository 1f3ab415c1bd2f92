"""Part A on MNIST: flow velocity → ε, the fixed posterior variance, digit prompts, the backend."""
import pytest
import torch

from course_utils.common.classifier import load_classifier, predict
from course_utils.part_a.backend import MNIST_EXAMPLES, choose_backend, load_backend, mnist_backend
from course_utils.part_a.diffusion import add_jump_variance, forward, posterior_variance, sample
from course_utils.part_a.digits import DigitPrompts, digit_image, parse_digit, sketch_digit, typed_digit
from course_utils.part_a.noise_models import FlowNoiseModel
from course_utils.part_a.pretrained import MNIST_FLOW_PATH, load_mnist_flow
from course_utils.part_a.schedule import if_scheduler, strided_timesteps, use_timesteps


def gen(seed):
    return torch.Generator().manual_seed(seed)


class KnownDataVelocity(torch.nn.Module):
    """A perfect velocity model for one known clean batch x (in [0, 1]): on the path
    z = s·x + (1 − s)·ε it returns v = x − ε with ε = (z − s·x)/(1 − s). It also records what
    it was called with."""

    def __init__(self, x):
        super().__init__()
        self.x, self.calls = x, []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, s, c=None):
        self.calls.append((z.clone(), float(s), c))
        eps = (z - s * self.x) / (1 - s)
        return self.x - eps


@pytest.fixture
def clean():
    return torch.rand(3, 1, 28, 28, generator=gen(0))


@pytest.mark.parametrize("t", [0, 30, 250, 500, 750, 990, 999])
def test_perfect_velocity_gives_the_true_noise(clean, t):
    model = FlowNoiseModel(KnownDataVelocity(clean))
    eps = torch.randn(clean.shape, generator=gen(t))
    x_t = forward(clean * 2 - 1, t, model.alphas_cumprod, noise=eps)
    eps_hat, variance = model(x_t, t, None)
    assert variance is None
    assert torch.allclose(eps_hat, eps, atol=2e-4)


def test_the_model_sees_the_flow_path_at_the_mapped_time(clean):
    velocity = KnownDataVelocity(clean)
    model = FlowNoiseModel(velocity)
    ac = model.alphas_cumprod
    t = int((ac - 0.5).abs().argmin())          # ᾱ_t ≈ 1/2: a = b, so s = 2a/(2a + b) ≈ 2/3
    eps = torch.randn(clean.shape, generator=gen(1))
    model(forward(clean * 2 - 1, t, ac, noise=eps), t, torch.zeros(1, 10))
    z, s, c = velocity.calls[-1]
    a, b = ac[t].sqrt().item(), (1 - ac[t]).sqrt().item()
    assert s == pytest.approx(2 * a / (2 * a + b)) and s == pytest.approx(2 / 3, abs=0.01)
    assert torch.allclose(z, s * clean + (1 - s) * eps, atol=1e-5)
    assert c.shape == (3, 10)                    # a (1, 10) condition is expanded to the batch
    # pure noise end and clean end of the schedule map to the ends of the flow
    assert model.flow_time(999)[0] < 1e-3 and model.flow_time(0)[0] > 0.99


def test_cfg_in_eps_equals_cfg_in_velocity(clean):
    # ε = z − s·v is affine in v, so guiding ε̂ is guiding v̂ with the same γ
    unet = load_mnist_flow()
    model = FlowNoiseModel(unet)
    x_t = torch.randn(2, 1, 28, 28, generator=gen(2))
    c, u = DigitPrompts()["a 3"], DigitPrompts()[""]
    e_c, _ = model(x_t, 500, c)
    e_u, _ = model(x_t, 500, u)
    s, scale = model.flow_time(500)
    z = (x_t + model.alphas_cumprod[500].sqrt()) / scale
    with torch.no_grad():
        v_c, v_u = unet(z, s, c.expand(2, -1)), unet(z, s, u.expand(2, -1))
    assert torch.allclose(e_u + 5 * (e_c - e_u), z - s * (v_u + 5 * (v_c - v_u)), atol=1e-4)


def test_fixed_posterior_variance_by_hand():
    ts = strided_timesteps()
    scheduler = use_timesteps(if_scheduler(variance_type="fixed_small"), ts)
    ac = scheduler.alphas_cumprod
    t, t_prev = 510, 480
    beta = 1 - ac[t] / ac[t_prev]
    beta_tilde = beta * (1 - ac[t_prev]) / (1 - ac[t])
    assert torch.allclose(posterior_variance(ac, t, t_prev), beta_tilde)
    assert beta_tilde < beta                     # the smaller of DDPM's two choices
    image = torch.zeros(1, 1, 4, 4)
    noise = torch.randn(image.shape, generator=gen(5))
    out = add_jump_variance(ac, t, t_prev, None, image, gen(5))
    assert torch.allclose(out, beta_tilde.sqrt() * noise, atol=1e-6)


def test_digit_prompts():
    prompts = DigitPrompts()
    assert prompts["a 3"].tolist() == [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]
    assert torch.equal(prompts["three"], prompts["3"]) and torch.equal(prompts["the digit 3"], prompts["a 3"])
    assert prompts[""].abs().sum() == 0
    assert parse_digit("") is None and parse_digit("An eight") == 8
    with pytest.raises(KeyError, match='"a 0" ... "a 9"'):
        prompts["a rocket ship"]


def test_digit_images():
    for name in ("test image", "a 2", "typed 4", "drawn 4", "drawn 2"):
        im = digit_image(name)
        assert im.shape == (1, 1, 28, 28) and im.min() >= -1 and im.max() <= 1, name
        assert im.mean() < -0.5, f"{name}: MNIST digits are white on a black background"
    assert not torch.equal(typed_digit(4), sketch_digit(4))
    with pytest.raises(ValueError, match="Colab"):
        sketch_digit(3)


@pytest.fixture(scope="module")
def backend():
    return mnist_backend("cpu")


def test_committed_model_is_small_and_records_its_command():
    assert MNIST_FLOW_PATH.stat().st_size < 3_000_000
    readme = (MNIST_FLOW_PATH.parent / "README.md").read_text()
    assert "python -m course_utils.part_a.pretrained" in readme
    assert "python -m course_utils.common.classifier" in readme


def test_auto_picks_mnist_without_a_gpu():
    assert choose_backend("auto", None, "cpu")[0] == "mnist"
    assert choose_backend("mnist", None, "cuda")[0] == "mnist"
    b = load_backend("auto", None, "cpu")
    assert b.name == "mnist" and "no CUDA GPU" in b.describe() and b.examples is MNIST_EXAMPLES


def test_mnist_backend_samples_read_as_their_digit(backend):
    # end to end: Part A's DDPM sampler with CFG on the committed model, judged by the classifier
    classifier = load_classifier()
    ts = strided_timesteps(990, 90)
    digits = [0, 1, 3, 7]
    samples = torch.cat([sample(backend.model, backend.embed(f"a {d}"), 3, backend.embed(""), 5.0, ts,
                                gen(d), progress=False) for d in digits])
    assert samples.shape == (12, 1, 28, 28)
    predicted = predict(classifier, (samples + 1) / 2)
    assert (predicted == torch.tensor(digits).repeat_interleave(3)).float().mean() >= 0.75


def test_mnist_generate_and_upsample(backend):
    images = backend.generate("a 5", 8, gen(0), n=2, guidance_scale=5.0)
    assert images.shape == (2, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert backend.upsample(images, "a 5").shape == (2, 1, 112, 112)
    assert torch.equal(images, backend.generate("a 5", 8, gen(0), n=2, guidance_scale=5.0))


def test_mnist_model_rejects_photos(backend):
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        backend.model(torch.zeros(1, 3, 64, 64), 500, backend.embed("a 1"))


def test_success_rates_by_hand():
    from course_utils.part_a.illusions import _rates
    r = _rates(("a 6", "a 9"), torch.tensor([6, 6, 1, 6]), torch.tensor([9, 2, 9, 9]),
               torch.tensor([6, 6, 6, 6]), torch.tensor([9, 0, 0, 0]))
    assert (r.n, r.first, r.second, r.both, r.baseline) == (4, 0.75, 0.75, 0.5, 0.25)
    assert "50%" in str(r) and "baseline 25%" in str(r)


def test_six_nine_anagram_reads_both_ways(backend):
    from course_utils.part_a.edits import ROTATE_180
    from course_utils.part_a.illusions import anagram_success
    rate, images = anagram_success(backend, load_classifier(), ("a 6", "a 9"), 4, 5.0, ROTATE_180,
                                   strided_timesteps(990, 90))
    assert images.shape == (4, 1, 28, 28)
    assert rate.both >= 0.75          # 96% over 50 seeds at stride 30 (benchmarks/quality.py)
    assert torch.equal(ROTATE_180.invert(ROTATE_180.apply(images)), images)


def test_backend_examples_are_digits(backend):
    from course_utils.part_a.backend import IF_EXAMPLES, backend_image
    im, what = backend_image("test image", "auto", None, "cpu")
    assert im.shape == (1, 1, 28, 28) and "7" in what
    photo, _ = backend_image("test image", "tiny", None, "cpu")
    assert photo.shape == (1, 3, 64, 64)
    ex = backend.examples
    names = [n for n, _ in ex.inpaint_targets] + list(ex.my_images) + list(ex.text_images)
    assert backend.images(names).shape == (len(names), 1, 28, 28)
    for prompt in [ex.prompt, ex.sdedit_prompt, ex.text_prompt, *ex.my_prompts,
                   *(p for pair in ex.anagram_pairs + ex.hybrid_pairs for p in pair)]:
        backend.embed(prompt)                       # every example prompt is a digit prompt
    assert backend.web_image("https://example.com/x.png")[0].shape == (1, 1, 28, 28)
    assert all(d.shape == (1, 1, 28, 28) for d in backend.drawings(use_canvas=True).values())
    assert IF_EXAMPLES.prompt == "a high quality photo" and IF_EXAMPLES.anagram_view == "flip"


def test_example_digits_and_sketches_read_as_what_they_are_called(backend):
    """The pictures standing in for photos are the digits their names promise: the test image
    is a 7, "a 2" a 2, the drawn sketches their digits (read by the committed classifier)."""
    ex = backend.examples
    named = {"test image": 7, **{name: parse_digit(name) for name in (*ex.my_images, *ex.text_images)},
             "drawn 2": 2, "drawn 4": 4, "drawn 5": 5, "drawn 7": 7}
    images = backend.images(list(named))
    assert predict(load_classifier(), (images + 1) / 2).tolist() == list(named.values())
