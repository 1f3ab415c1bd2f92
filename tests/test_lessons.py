"""Part A's lesson measurements (course_utils.part_a.lessons): what they count, on cases with known
answers, and that every lesson's measurement runs on the MNIST backend at smoke size.
Thresholds (does iterative beat one-step?) live in benchmarks/quality.py, not here."""
import pytest
import torch
from torch import nn

from course_utils.common.classifier import load_classifier
from course_utils.common.metrics import Judge
from course_utils.part_a import lessons
from course_utils.part_a.backend import mnist_backend
from course_utils.part_a.digits import lesson_digits, reference_digits
from course_utils.part_a.edits import box_mask
from course_utils.part_a.illusions import far_view_check, load_far_judge
from course_utils.part_a.noise_models import OracleNoiseModel
from course_utils.part_a.schedule import strided_timesteps


class ReadsBrightness(nn.Module):
    """A stand-in classifier: reads digit k when the mean pixel lies in [k/10, (k+1)/10)."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))   # predict() reads the device from a parameter

    def forward(self, x):
        k = (x.mean(dim=(1, 2, 3)) * 10).clamp(0, 9.999).floor().long()
        return nn.functional.one_hot(k, 10).float()


def flat_images(levels):
    """(N, 1, 28, 28) in [-1, 1] whose [0, 1] brightness is each level."""
    return torch.tensor(levels).view(-1, 1, 1, 1).expand(-1, 1, 28, 28) * 2 - 1


def test_score_counts_intended_and_original_readings():
    images = flat_images([0.05, 0.15, 0.25, 0.95])          # read as 0, 1, 2, 9
    s = lessons.score("x", images, torch.tensor([0, 1, 3, 9]), ReadsBrightness(),
                      original=torch.tensor([0, 0, 2, 2]))
    assert (s.n, s.kept, s.also, s.fd) == (4, 0.75, 0.5, None)


def test_one_hots_are_the_mnist_prompts():
    backend = mnist_backend()
    assert torch.equal(lessons.one_hots(torch.tensor([3, 0])), backend.embed_each(["a 3", "a 0"]))


def test_lesson_inputs_and_reference_are_disjoint_held_out_digits():
    x, y = lesson_digits(10)
    ref = reference_digits()
    assert x.shape == (100, 1, 28, 28) and torch.equal(torch.bincount(y), torch.full((10,), 10))
    assert ref.shape == (200, 1, 28, 28)
    flat = lambda t: {tuple(r.flatten().tolist()) for r in t}  # noqa: E731
    assert not flat(x) & flat(ref)
    # the first example of each digit is still the one the notebooks have always shown
    assert torch.equal(x[70], mnist_backend().image("test image")[0])


class OracleBackend:
    """The MNIST backend's interface around an oracle that knows the clean batch."""

    def __init__(self, x0):
        self.model, self.device = OracleNoiseModel(x0), torch.device("cpu")

    def embed(self, prompt):
        return torch.zeros(1, 10)


def test_denoising_with_a_perfect_model_gives_the_inputs_back():
    x, y = lesson_digits(2)
    classifier = load_classifier()
    judge = Judge(classifier, (reference_digits() + 1) / 2, n=100)
    ts = strided_timesteps(990, 90)
    rows, out = lessons.denoising(OracleBackend(x), classifier, judge, x, y, 3, ts, scale=5.0)
    truth = lessons.score("inputs", x, y, classifier, judge)
    one_step = rows[1]
    assert torch.allclose(out[one_step.what], x, atol=1e-5)        # x̂0 is exact for an oracle
    assert one_step.kept == truth.kept and one_step.fd == pytest.approx(truth.fd, rel=1e-4)
    for row in rows[2:]:                                             # the loops end at x0 too
        assert torch.allclose(out[row.what], x, atol=2e-2)
        assert row.kept == truth.kept


@pytest.fixture(scope="module")
def smoke():
    x, y = lesson_digits(1)                                      # one digit per class
    classifier = load_classifier()
    return (mnist_backend(), classifier, Judge(classifier, (reference_digits() + 1) / 2, n=100), x, y,
            strided_timesteps(990, 90))


def valid(rows, n):
    return all(r.n == n and 0 <= r.kept <= 1 for r in rows)


def test_every_lesson_measurement_runs_on_the_mnist_backend(smoke):
    backend, classifier, judge, x, y, ts = smoke
    rows, out = lessons.denoising(backend, classifier, judge, x, y, 3, ts, scale=5.0)
    assert [r.what.split()[0] for r in rows] == ["Gaussian", "one", "iterative", "iterative"]
    assert valid(rows, 10) and all(r.fd >= 0 for r in rows) and set(out) >= {"noisy"}
    rows, samples = lessons.sampling(backend, classifier, judge, 10, ts, (None, 3.0))
    assert valid(rows, 10) and all(s.shape == (10, 1, 28, 28) for s in samples.values())
    rows = lessons.sdedit_rates(backend, classifier, x, y, [1, 5, 20], ts, 5.0, target=(y + 3) % 10)
    assert [r.what for r in rows] == ["i_start = 1 (t = 900)", "i_start = 5 (t = 540)"]  # 20 is past the schedule
    assert valid(rows, 10) and all(r.also is not None for r in rows)
    rows, out = lessons.inpaint_rates(backend, classifier, x, y, box_mask(14, 0, 14, 28, size=28), ts, 5.0)
    assert valid(rows, 10)
    top = out[rows[0].what][..., :14, :]
    assert torch.allclose(top, x[..., :14, :], atol=1e-6)                 # kept pixels are exact


def test_far_view_judge_is_fair_on_the_shipped_digits():
    x, y = lesson_digits(10)
    per_class = far_view_check(load_far_judge(), (x + 1) / 2, y)
    assert per_class.shape == (10,) and per_class.min() >= 0.8   # far views (10 px) of real digits


def test_far_view_is_small_and_smooth():
    from course_utils.part_a.illusions import FAR_SIZE, far_view

    x = torch.zeros(2, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1
    small, back = far_view(x), far_view(x, out_size=28)
    assert small.shape == (2, 1, FAR_SIZE, FAR_SIZE) and back.shape == x.shape
    # antialiased: the mass of the image survives, and no hard 0/1 pixel blocks remain
    assert small.mean().item() == pytest.approx(x.mean().item(), rel=0.05)
    assert 0 < back.max() < 1 and (back > 0).sum() > (x > 0).sum()
    # a larger image (IF's 64×64, stage II's 256×256) is seen at a quarter of its width
    assert far_view(torch.zeros(1, 3, 64, 64)).shape[-1] == 16
    assert far_view(torch.zeros(1, 3, 256, 256)).shape[-1] == 64


def test_prompt_for_reads_the_digit_of_an_image_name():
    backend = mnist_backend()
    assert [backend.prompt_for(n) for n in ["test image", "a 2", "typed 4", "drawn 5", "drawing 1"]] == \
        ["a 7", "a 2", "a 4", "a 5", ""]


def test_figures_pick_a_failing_input_of_each_class_where_there_is_one():
    intended = torch.tensor([0, 0, 1, 1, 1])
    result = flat_images([0.05, 0.05, 0.15, 0.55, 0.75])   # the 2nd and 3rd 1 are read as 5 and 7
    noisy = flat_images([0.95] * 5)                        # an input row: never counted
    columns = lessons.pick_columns({"noisy": noisy, "result": result}, intended, ReadsBrightness(), unread=("noisy",))
    assert columns == [0, 3]
