"""Part B §1.2.1, §2.2 (Algorithm B.1), §2.4 (Algorithm B.3): objectives and the training loop."""
import math

import pytest
import torch
from torch import nn

from course_utils.common.data import load_mnist
from course_utils.part_b.flow import flow_matching_loss
from course_utils.part_b.noising import denoiser_loss
from course_utils.part_b.train import (class_flow_objective, denoiser_objective, fit,
                                       time_flow_objective)
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet


@pytest.fixture(scope="module")
def mnist():
    """The synthetic MNIST that conftest.py writes under COURSE_DATA_ROOT."""
    images, labels = load_mnist(download=False)
    return images, labels


# ---- overfitting one batch -----------------------------------------------------------------

def test_denoiser_overfits_one_batch(mnist):
    """Same 4 images, same noise every step: the UNet can memorise D(z) = x."""
    x = mnist[0][:4]
    torch.manual_seed(0)
    model = UnconditionalUNet(1, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(120):
        loss = denoiser_loss(model, x, torch.Generator().manual_seed(1), sigma=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.05                       # the untrained UNet is far from x
    assert sum(losses[-5:]) / 5 < 0.05 * losses[0]


def test_flow_matching_overfits_one_batch(mnist):
    """Same 4 images with fixed x_0 and t: the UNet can memorise u(x_t, t) = x_1 - x_0."""
    x1 = mnist[0][:4]
    g = torch.Generator().manual_seed(0)
    x0, t = torch.randn(x1.shape, generator=g), torch.rand(4, generator=g)
    torch.manual_seed(0)
    model = TimeConditionalUNet(1, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(120):
        loss = flow_matching_loss(model, x1, x0, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.5                        # E|x1 - x0|^2 ~ 1 + E x1^2
    assert sum(losses[-5:]) / 5 < 0.05 * losses[0]


# ---- objectives ----------------------------------------------------------------------------

class Recorder(nn.Module):
    """Returns zeros; remembers what the objective fed it."""

    num_classes = 10
    in_channels = 1

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x, t=None, c=None):
        self.seen.append({"x": x.detach(), "t": None if t is None else t.detach(),
                          "c": None if c is None else c.detach()})
        return torch.zeros_like(x) + self.w


def test_denoiser_objective_uses_sigma_half_by_default():
    x = torch.full((64, 1, 28, 28), 0.5)
    rec = Recorder()
    loss = denoiser_objective()(rec, x, None, torch.Generator().manual_seed(0))
    z = rec.seen[0]["x"]
    assert abs((z - x).std().item() - 0.5) < 0.01 and abs((z - x).mean().item()) < 0.01
    assert loss.item() == pytest.approx(0.25)      # zeros vs 0.5 everywhere


def test_denoiser_objective_pure_noise():
    x = torch.full((64, 1, 28, 28), 3.0)
    rec = Recorder()
    denoiser_objective(None)(rec, x, None, torch.Generator().manual_seed(0))
    z = rec.seen[0]["x"]
    assert abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01   # z = ε, no x in it


def test_time_flow_objective_feeds_a_point_on_the_path():
    x1 = torch.full((512, 1, 28, 28), 1.0)
    rec = Recorder()
    loss = time_flow_objective()(rec, x1, None, torch.Generator().manual_seed(0))
    xt, t = rec.seen[0]["x"], rec.seen[0]["t"].reshape(-1)
    assert rec.seen[0]["c"] is None
    assert t.shape == (512,) and t.min() >= 0 and t.max() <= 1
    # x_t = (1 - t) x_0 + t: per image, mean ≈ t and std ≈ 1 - t
    per_mean = xt.flatten(1).mean(1)
    per_std = xt.flatten(1).std(1)
    assert (per_mean - t).abs().max() < 0.15
    assert (per_std - (1 - t)).abs().max() < 0.1
    # u = 0: L = E (1 - x_0)^2 = 2
    assert loss.item() == pytest.approx(2.0, abs=0.02)


@pytest.mark.parametrize("p, dropped", [(0.0, 0.0), (1.0, 1.0), (0.1, 0.1)])
def test_class_flow_objective_passes_one_hot_with_dropout(p, dropped):
    n = 4000
    y = torch.arange(n) % 10
    rec = Recorder()
    class_flow_objective(p)(rec, torch.rand(n, 1, 28, 28), y, torch.Generator().manual_seed(0))
    c = rec.seen[0]["c"]
    one_hot = torch.eye(10)[y]
    zero_rows = (c == 0).all(1)
    assert abs(zero_rows.float().mean().item() - dropped) < 0.02
    assert torch.equal(c[~zero_rows], one_hot[~zero_rows])


# ---- the loop ------------------------------------------------------------------------------

def indexed_images(n):
    """Image i is filled with the value i / n, so the objective can tell which images it got."""
    return (torch.arange(n, dtype=torch.float32) / n)[:, None, None, None].expand(n, 1, 28, 28).clone()


def recording_objective(log, n):
    """Logs (image indices, labels) of every batch; image i carries the value i / n."""
    def objective(model, x, y, g):
        log.append((torch.round(x[:, 0, 0, 0] * n).long().tolist(), y.tolist()))
        return model(x).pow(2).mean()
    return objective


def test_fit_shuffles_each_epoch_and_keeps_labels_with_images():
    n = 40
    images, labels = indexed_images(n), torch.arange(n) % 10
    log = []
    obj = recording_objective(log, n)
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    hist = fit(model, obj, images, labels, epochs=2, batch_size=16, optimizer=opt, seed=0)
    assert [len(idx) for idx, _ in log] == [16, 16, 8, 16, 16, 8]
    assert hist.iters_per_epoch == 3 and len(hist.losses) == 6
    for epoch in (log[:3], log[3:]):
        seen = [i for idx, _ in epoch for i in idx]
        assert sorted(seen) == list(range(n))         # every image once per epoch
    assert [i for idx, _ in log[:3] for i in idx] != list(range(n))            # shuffled
    assert [i for idx, _ in log[:3] for i in idx] != [i for idx, _ in log[3:] for i in idx]
    for idx, ys in log:
        assert ys == [i % 10 for i in idx]


def test_fit_images_per_epoch_caps_the_epoch():
    n = 40
    log = []
    obj = recording_objective(log, n)
    model = nn.Conv2d(1, 1, 3, padding=1)
    hist = fit(model, obj, indexed_images(n), epochs=1, batch_size=16, images_per_epoch=20,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.0), seed=0)
    seen = [i for idx, _ in log for i in idx]
    assert len(seen) == 20 and len(set(seen)) == 20
    assert hist.iters_per_epoch == 2 and len(hist.losses) == 2


def test_fit_steps_exponential_lr_once_per_epoch():
    """Handout §2.2: gamma = 0.1 ** (1 / num_epochs), scheduler.step() after every epoch,
    so the LR ends at a tenth of the initial one."""
    epochs = 3
    model = nn.Conv2d(1, 1, 3, padding=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1.0 / epochs))
    lrs = []
    obj = lambda m, x, y, g: (lrs.append(opt.param_groups[0]["lr"]), m(x).pow(2).mean())[1]
    fit(model, obj, torch.rand(32, 1, 28, 28), epochs=epochs, batch_size=8, optimizer=opt,
        scheduler=sched, seed=0)
    g = 0.1 ** (1 / 3)
    expected = [1e-2] * 4 + [1e-2 * g] * 4 + [1e-2 * g * g] * 4
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3, rel=1e-9)


def test_fit_records_the_objectives_losses():
    model = nn.Conv2d(1, 1, 3, padding=1)
    values = iter([3.0, 2.0, 1.0, 0.5])

    def objective(m, x, y, g):
        return m(x).sum() * 0 + next(values)

    hist = fit(model, objective, torch.rand(16, 1, 28, 28), epochs=2, batch_size=8,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.0), seed=0, check_every=3)
    assert hist.losses == [3.0, 2.0, 1.0, 0.5]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("check_every", [1, 20])
def test_fit_stops_on_a_non_finite_loss_naming_the_step(bad, check_every):
    """Batch 8 of 16 images: 2 steps per epoch; the 3rd step (epoch 2) produces NaN/inf."""
    calls = []

    def objective(m, x, y, g):
        calls.append(1)
        scale = bad if len(calls) == 3 else 1.0
        return m(x).pow(2).mean() * scale

    model = nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(FloatingPointError, match=r"step 3\b"):
        fit(model, objective, torch.rand(16, 1, 28, 28), epochs=3, batch_size=8,
            optimizer=torch.optim.SGD(model.parameters(), lr=1e-3), seed=0,
            check_every=check_every)


def test_fit_trains_a_class_conditioned_unet_end_to_end(mnist):
    """Algorithm B.3 through fit on the synthetic digits: the loss goes down."""
    images, labels = mnist[0][:64], mnist[1][:64]
    torch.manual_seed(0)
    model = ClassConditionalUNet(1, 10, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1 / 6))
    hist = fit(model, class_flow_objective(0.1), images, labels, epochs=6, batch_size=16,
               optimizer=opt, scheduler=sched, seed=0)
    assert len(hist.losses) == 24 and all(math.isfinite(v) for v in hist.losses)
    first, last = sum(hist.losses[:4]) / 4, sum(hist.losses[-4:]) / 4
    assert last < 0.8 * first


def test_fit_trains_in_train_mode_even_after_sampling_set_eval():
    model = UnconditionalUNet(1, 2).eval()       # e.g. the notebook sampled after an epoch
    modes = []

    def objective(m, x, y, g):
        modes.append(m.training)
        return m(x).pow(2).mean()

    fit(model, objective, torch.rand(8, 1, 28, 28), epochs=1, batch_size=4,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0), seed=0)
    assert modes == [True, True]


def test_a_nan_loss_keeps_the_last_good_checkpoint(tmp_path):
    """NaN in epoch 2 (step 3): last.pt must still be epoch 1 with finite weights."""
    calls = []

    def objective(m, x, y, g):
        calls.append(1)
        return m(x).pow(2).mean() * (float("nan") if len(calls) == 3 else 1.0)

    torch.manual_seed(0)
    model = UnconditionalUNet(1, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with pytest.raises(FloatingPointError, match=r"step 3\b"):
        fit(model, objective, torch.rand(16, 1, 28, 28), epochs=3, batch_size=8, optimizer=opt,
            ckpt_dir=tmp_path, seed=0)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["epoch"] == 1 and len(state["losses"]) == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# ---- EMA of the weights (§2.6) -------------------------------------------------------------

def test_ema_is_the_exponential_average_of_the_weights_after_each_step():
    """loss = w with SGD lr 1 makes w_k = w_0 - k after step k; the average starts at w_1
    and follows  w̄_k = β w̄_{k-1} + (1 - β) w_k."""
    beta, steps = 0.9, 6
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 10.0)
    fit(model, lambda m, x, y, g: m.weight.sum(), torch.zeros(steps, 1, 1, 1), epochs=1, batch_size=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=1.0), ema_decay=beta)
    expected = 10.0 - 1
    for k in range(2, steps + 1):
        expected = beta * expected + (1 - beta) * (10.0 - k)
    assert model.weight.item() == pytest.approx(expected, abs=1e-5)


def conv_bn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3))


def test_recompute_batchnorm_sets_the_statistics_of_the_model_itself():
    from course_utils.part_b.train import recompute_batchnorm
    model = conv_bn().eval()
    model[1].running_mean.fill_(5.0)
    images = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    recompute_batchnorm(model, lambda m, x, y, g: m(x).sum(), images, torch.zeros(8, dtype=torch.long),
                        batch_size=8, num_batches=1)
    h = model[0](images)
    assert torch.allclose(model[1].running_mean, h.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(model[1].running_var, h.var((0, 2, 3), unbiased=True), atol=1e-5)
    assert not model.training and model[1].momentum == 0.1      # mode and momentum restored


def test_ema_model_gets_batchnorm_statistics_of_its_own_weights():
    """Averaging the live model's running statistics along with the weights gives statistics
    that fit neither (a 10%-accuracy model in practice); the averaged weights get their own."""
    from course_utils.part_b.train import recompute_batchnorm
    images = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(1))   # fit wants [0, 1]
    labels = torch.zeros(64, dtype=torch.long)
    objective = lambda m, x, y, g: (m(x) - x.mean()).pow(2).mean()
    model = conv_bn()
    fit(model, objective, images, labels, epochs=2, batch_size=16, ema_decay=0.9,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5))
    own = conv_bn()
    own.load_state_dict(model.state_dict())
    recompute_batchnorm(own, objective, images, labels, batch_size=16)
    assert torch.allclose(model[1].running_mean, own[1].running_mean, atol=1e-6)
    assert torch.allclose(model[1].running_var, own[1].running_var, atol=1e-6)
