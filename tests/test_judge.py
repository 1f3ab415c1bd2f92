"""The digit judge that can say "not a digit" (course_utils.common.judge): the off-manifold shapes it
is trained to refuse, the mechanics of rejection (a rejected image never counts as read right),
a smoke-size training on the synthetic glyph digits, and the committed judge on shipped digits.
Validation at full size (held-out MNIST, per shape kind) is benchmarks/judge.py."""
import pytest
import torch
from torch import nn

from course_utils.common import judge as J
from course_utils.common.classifier import predict


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def asymmetric_digits(n_per_class=3):
    """(N, 1, 28, 28) images of every class, each a distinct asymmetric blot, and labels."""
    g = gen(1)
    x = torch.zeros(10 * n_per_class, 1, 28, 28)
    for i in range(len(x)):
        x[i, 0, 4:24, 6:12] = torch.rand(20, 6, generator=g)
    return x, torch.arange(10).repeat_interleave(n_per_class)


@pytest.mark.parametrize("kind", list(J.KINDS))
def test_off_manifold_shapes_come_only_from_digits_that_stop_being_digits(kind):
    x, y = asymmetric_digits()
    shapes = J.off_manifold(x, y, kind, 40, gen())
    assert shapes.shape[1:] == (1, 28, 28) and 0 < len(shapes) <= 40
    assert shapes.min() >= 0 and shapes.max() <= 1 + 1e-6
    if kind in ("mirror", "upside_down", "rot180"):
        # each shape is the transform of an allowed digit, never of an excluded one
        made = J.transform(kind, x)
        for s in shapes:
            match = [int(y[i]) for i in range(len(x)) if torch.equal(made[i], s)]
            assert match and all(d not in J.KINDS[kind] for d in match)
    if J.KINDS[kind]:
        keep = torch.tensor([int(d) in J.KINDS[kind] for d in y])
        with pytest.raises(ValueError, match="no digit"):
            J.off_manifold(x[keep], y[keep], kind, 5, gen())


def test_the_excluded_digits_are_those_that_stay_digits():
    assert J.KINDS["rot180"] >= {0, 1, 8, 6, 9} and 3 in J.KINDS["upside_down"]
    assert not J.KINDS["mirror"] & {2, 3, 4, 5, 6, 7, 9}      # a mirrored 3 (ε) must be refused


def test_overlays_superpose_two_different_digits():
    x, y = asymmetric_digits()
    x[:, 0, 4:24, 6:12] = 0
    for i in range(len(x)):            # digit d: one bright column at 2 + 2d
        x[i, 0, 10, 2 + 2 * int(y[i])] = 1
    shapes = J.off_manifold(x, y, "overlay", 50, gen())
    assert ((shapes > 0.5).sum(dim=(1, 2, 3)) == 2).all()   # two columns lit: two different digits


def test_blobs_are_blurred_to_full_contrast():
    x, y = asymmetric_digits()
    blobs = J.off_manifold(x, y, "blob", 10, gen())
    assert torch.allclose(blobs.amax(dim=(1, 2, 3)), torch.ones(len(blobs)))
    assert (blobs > 0.05).sum() > (x[:10] > 0.05).sum()        # spread out


class AlwaysReject(nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return nn.functional.one_hot(torch.full((len(x),), J.REJECT), 11).float()


def test_a_rejected_image_is_never_read_right():
    from course_utils.part_a import lessons
    from course_utils.part_a.illusions import _rates

    x = torch.zeros(4, 1, 28, 28)
    assert predict(AlwaysReject(), x).tolist() == [J.REJECT] * 4
    s = lessons.score("x", x * 2 - 1, torch.tensor([0, 1, 2, 3]), AlwaysReject(),
                      original=torch.tensor([0, 1, 2, 3]))
    assert s.kept == 0 and s.also == 0
    read = torch.full((4,), J.REJECT)
    rate = _rates(("a 5", "a 3"), read, torch.tensor([3, 3, 3, 3]), read, read)
    assert rate.first == rate.both == rate.baseline == 0 and rate.second == 1


def test_judge_has_eleven_outputs_and_loads_only_as_a_judge(tmp_path):
    from course_utils.common.checkpoint import CheckpointMismatch, save_weights
    from course_utils.common.classifier import load_classifier

    model = J.DigitJudge()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 11)
    path = save_weights(tmp_path / "judge.pt", model)
    assert isinstance(J.load_judge(path), J.DigitJudge)
    with pytest.raises(CheckpointMismatch):
        load_classifier(path)
    with pytest.raises(FileNotFoundError, match="train one"):
        J.load_judge(tmp_path / "missing.pt")


def test_smoke_training_learns_to_refuse_the_shapes(fake_mnist):
    x, y = fake_mnist
    model = J.train_judge(x, y, epochs=10, batch_size=32, lr=3e-3, seed=0, progress=False)   # ~15 s
    v = J.validate(model, x, y, per_kind=60)
    assert set(v["accepted"]) == set(J.KINDS)
    # training-set numbers on 256 glyph digits (measured: 100% read right, 0-12% accepted per kind):
    # a check that rejection is learnt without refusing the digits, not a benchmark
    assert v["real_right"] >= 0.8 and v["accepted_all"] <= 0.2
    assert all(share <= 0.35 for share in v["accepted"].values()), v["accepted"]
    assert 0 <= J.calibrate(model, x, y, max_rejected=0.01) <= 4
    assert (predict(model, x) == J.REJECT).float().mean() <= 0.01
    assert "off-manifold shapes accepted" in J.format_validation(v, len(x))


def test_the_judge_is_committed():
    # the lessons load it unconditionally (lessons.lesson_judge): its absence is a failure, not a skip
    assert J.JUDGE_PATH.exists(), f"{J.JUDGE_PATH} is missing: train one (python -m course_utils.common.judge)"


def test_committed_judge_reads_shipped_digits_and_refuses_their_shapes():
    from course_utils.part_a.digits import lesson_digits

    assert J.JUDGE_PATH.stat().st_size < 2_000_000
    images, labels = lesson_digits(10)       # 100 held-out MNIST digits shipped with the package
    model = J.load_judge()
    v = J.validate(model, (images + 1) / 2, labels, per_kind=200)
    assert v["real_right"] >= 0.95
    assert all(share <= 0.15 for share in v["accepted"].values()), v["accepted"]


def test_committed_judge_carries_its_validation_and_recipe():
    info = torch.load(J.JUDGE_PATH, weights_only=True)["info"]    # plain data only: loads safely
    v = info["validation"]
    assert set(v["accepted"]) == set(J.KINDS) and info["num_held_out"] >= 1000
    assert v["real_right"] >= 0.97 and v["accepted_all"] <= 0.05           # issue 18's targets
    assert info["reject_offset"] == float(J.load_judge().reject_offset)
    assert "held-out real digits read right" in J.validation_summary()
