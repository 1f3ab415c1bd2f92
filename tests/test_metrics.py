"""The digit classifier and the Fréchet distance: closed forms, the committed weights, round trips."""
import pytest
import torch

from course_utils.common.classifier import (CLASSIFIER_PATH, DigitClassifier, accuracy,
                                            load_classifier, predict, random_affine, save_classifier,
                                            train_classifier)
from course_utils.common.metrics import (Judge, balanced_labels, feature_stats, frechet_distance,
                                         frechet_distance_from_stats)
from course_utils.part_a.digits import lesson_digits


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    # FD(N(μ₁, diag σ₁²), N(μ₂, diag σ₂²)) = ‖μ₁ − μ₂‖² + Σ (σ₁ − σ₂)²
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.5])
    fd = frechet_distance_from_stats(mu1, torch.diag(s1 ** 2), mu2, torch.diag(s2 ** 2))
    assert fd == pytest.approx(5.0 + 4.0 + 1.0 + 0.0, abs=1e-9)


def test_frechet_distance_with_non_commuting_covariances_matches_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = torch.randn(4, 4, generator=gen(0), dtype=torch.float64), torch.randn(4, 4, generator=gen(1), dtype=torch.float64)
    c1, c2 = a @ a.T + 0.1 * torch.eye(4, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(4, dtype=torch.float64)
    mu1, mu2 = torch.randn(4, generator=gen(2), dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    covmean = scipy_linalg.sqrtm((c1 @ c2).numpy()).real
    expected = float((mu1 - mu2) @ (mu1 - mu2) + c1.trace() + c2.trace() - 2 * covmean.trace())
    assert frechet_distance_from_stats(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-8)
    # symmetric, and zero for identical statistics
    assert frechet_distance_from_stats(mu2, c2, mu1, c1) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance_from_stats(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-8)


def test_feature_stats_and_sample_fd():
    f = torch.randn(4000, 3, generator=gen(0)) * torch.tensor([1.0, 2.0, 3.0]) + 1
    mu, cov = feature_stats(f)
    assert torch.allclose(mu, torch.ones(3, dtype=torch.float64), atol=0.1)
    assert torch.allclose(cov.diagonal(), torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), rtol=0.1)
    g = torch.randn(4000, 3, generator=gen(1)) * torch.tensor([1.0, 2.0, 3.0]) + 1
    assert frechet_distance(f, g) < 0.05          # same distribution: only sampling noise
    assert frechet_distance(f, g + 2) == pytest.approx(12.0, rel=0.05)   # shift by 2 in 3 dims
    with pytest.raises(ValueError, match="N ≥ 2"):
        feature_stats(torch.zeros(1, 3))


def test_balanced_labels():
    assert balanced_labels(25).bincount().tolist() == [3] * 5 + [2] * 5


def test_random_affine_keeps_shape_and_mass():
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1
    y = random_affine(x, gen(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.3)  # scale ∈ [0.9, 1.1]


@pytest.fixture(scope="module")
def committed():
    return load_classifier()


def test_committed_classifier_is_small_and_reads_held_out_digits(committed):
    assert CLASSIFIER_PATH.stat().st_size < 2_000_000
    images, labels = lesson_digits(10)     # 100 held-out MNIST digits shipped with the package
    assert accuracy(committed, (images + 1) / 2, labels) >= 0.98
    info = torch.load(CLASSIFIER_PATH, weights_only=True)["info"]
    assert info["held_out_accuracy"] >= 0.99 and info["num_held_out"] >= 1000


def test_judge_floor_and_identity(committed):
    images, labels = lesson_digits(10)
    x = (images + 1) / 2
    judge = Judge(committed, x, n=50, seed=0)
    assert judge.floor > 0
    # the reference set itself is at distance 0 from itself, and read as its labels
    order = torch.randperm(100, generator=gen(0))
    q = judge(x[order[50:]], labels[order[50:]])
    assert q.fd == pytest.approx(0.0, abs=1e-4) and q.accuracy >= 0.98 and q.n == 50
    # blank images are far from real digits
    assert judge(torch.zeros(50, 1, 28, 28)).fd > 10 * judge.floor
    with pytest.raises(ValueError, match="lower n"):
        Judge(committed, x, n=60)


def test_classifier_rejects_wrong_shapes(committed):
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        committed(torch.zeros(2, 3, 64, 64))


def test_training_learns_and_round_trips(tmp_path, fake_mnist):
    x, y = fake_mnist
    model = train_classifier(x[:128], y[:128], epochs=10, batch_size=32, lr=3e-3, progress=False)
    assert accuracy(model, x[128:], y[128:]) > 0.6      # unseen glyphs; 10 classes: chance is 0.1
    path = save_classifier(model, tmp_path / "c.pt", note="test")
    again = load_classifier(path)
    assert torch.equal(predict(model, x[:64]), predict(again, x[:64]))
    with pytest.raises(FileNotFoundError, match="python -m course_utils.common.classifier"):
        load_classifier(tmp_path / "missing.pt")
