"""The kernel distance (KID's unbiased MMD² with a cubic polynomial kernel, metrics.kernel_distance)
and where the lessons report it."""
import pytest
import torch

from course_utils.common.metrics import Judge, frechet_distance, kernel_distance, polynomial_kernel


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_closed_form_constant_sets():
    # all a = u, all b = v: (u·u/d + 1)³ + (v·v/d + 1)³ − 2 (u·v/d + 1)³
    u, v = torch.tensor([[1.0, 0.0]]).repeat(5, 1), torch.tensor([[0.0, 1.0]]).repeat(7, 1)
    assert kernel_distance(u, v) == pytest.approx(1.5 ** 3 + 1.5 ** 3 - 2 * 1.0, abs=1e-12)
    assert kernel_distance(u, u) == pytest.approx(0.0, abs=1e-12)


def test_closed_form_linear_kernel_is_mean_difference_minus_bias():
    # degree 1, coef 0: the unbiased estimate of ‖μ_a − μ_b‖² / d
    a = torch.randn(50, 4, generator=gen(1), dtype=torch.float64)
    b = torch.randn(60, 4, generator=gen(2), dtype=torch.float64) + 1
    d = a.shape[1]
    within = lambda x: ((x.sum(0) @ x.sum(0)) - (x * x).sum()) / (len(x) * (len(x) - 1) * d)
    expected = within(a) + within(b) - 2 * (a.mean(0) @ b.mean(0)) / d
    assert kernel_distance(a, b, degree=1, coef=0.0) == pytest.approx(float(expected), rel=1e-9)


def test_unbiased_for_one_distribution_while_fd_is_not():
    # many pairs of small sets from one Gaussian: KID averages ≈ 0 (some negative), FD stays > 0
    kids, fds = [], []
    for seed in range(40):
        x = torch.randn(60, 8, generator=gen(seed))
        kids.append(kernel_distance(x[:30], x[30:]))
        fds.append(frechet_distance(x[:30], x[30:]))
    spread = torch.tensor(kids).std().item()
    assert min(kids) < 0 < max(kids)
    assert abs(sum(kids) / len(kids)) < spread / 2
    assert min(fds) > 0
    shifted = kernel_distance(torch.randn(30, 8, generator=gen(99)) + 1, torch.randn(30, 8, generator=gen(98)))
    assert shifted > 5 * spread


def test_shapes_and_errors():
    assert polynomial_kernel(torch.ones(3, 5), torch.ones(4, 5)).shape == (3, 4)
    with pytest.raises(ValueError):
        kernel_distance(torch.ones(1, 3), torch.ones(5, 3))
    with pytest.raises(ValueError):
        kernel_distance(torch.ones(4, 3), torch.ones(5, 2))


def test_real_halves_score_near_zero_in_the_classifier_features():
    from course_utils.common.classifier import load_classifier
    from course_utils.common.metrics import classifier_features
    from course_utils.part_a.digits import reference_digits

    classifier = load_classifier()
    real = (reference_digits() + 1) / 2                        # 200 shipped held-out digits
    feats = classifier_features(classifier, real[torch.randperm(len(real), generator=gen(0))])
    half = len(feats) // 2
    real_vs_real = kernel_distance(feats[:half], feats[half:])
    blank = kernel_distance(classifier_features(classifier, torch.zeros(half, 1, 28, 28)), feats[half:])
    assert abs(real_vs_real) < 0.05 * blank
    # the Judge reports it with its real-vs-real value; a copy of its reference set scores a small
    # negative number: with a = b the estimate is 2 (mean off-diagonal k − mean k), the cross term
    # keeping the diagonal k(x, x) that the within terms leave out
    judge = Judge(classifier, real, n=100, seed=0)
    q = judge(real[torch.randperm(len(real), generator=gen(0))[100:]])
    assert q.kid is not None and q.kid_floor == judge.kid_floor
    assert abs(judge.kid_floor) < 0.05 * blank and abs(q.kid) < 0.05 * blank   # measured: 0.011, -0.063
    k = polynomial_kernel(judge.reference_features, judge.reference_features).double()
    m = len(k)
    assert q.kid == pytest.approx(float(2 * ((k.sum() - k.trace()) / (m * (m - 1)) - k.mean())), rel=1e-3)


def test_lesson_scores_print_kid_with_its_real_vs_real_value():
    from course_utils.part_a.lessons import Score

    s = Score("x", 100, 0.9, fd=2.0, floor=4.0, kid=0.0123, kid_floor=-0.0004)
    assert "KID×10³  12.30 (real vs real -0.40)" in str(s) and "floor" not in str(s)
    assert "FD  2.00" in str(Score("x", 100, 0.9, fd=2.0, floor=4.0))   # no KID: FD as before
