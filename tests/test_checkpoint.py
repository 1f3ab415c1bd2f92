"""Checkpoints (handout hint after §1.2: checkpoint model and optimizer every epoch, resume)."""
import errno
import os

import pytest
import torch

from course_utils.common import checkpoint
from course_utils.common.checkpoint import (load_checkpoint, load_weights, save_checkpoint,
                                            save_weights)
from course_utils.common.data import load_mnist
from course_utils.part_b.train import class_flow_objective, fit
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet


def trained_bn(model, steps=2):
    """Run a few train-mode forwards so BN running statistics differ from their init."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            if isinstance(model, ClassConditionalUNet):
                model(torch.rand(4, 1, 28, 28) * 3, torch.rand(4), torch.tensor([1, 2, 3, 4]))
            elif isinstance(model, TimeConditionalUNet):
                model(torch.rand(4, 1, 28, 28) * 3, torch.rand(4))
            else:
                model(torch.rand(4, 1, 28, 28) * 3)
    return model.eval()


# ---- round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [UnconditionalUNet, TimeConditionalUNet, ClassConditionalUNet])
def test_weights_round_trip_gives_identical_outputs(tmp_path, cls):
    torch.manual_seed(0)
    a = trained_bn(cls(num_hiddens=4))
    torch.manual_seed(1)
    b = cls(num_hiddens=4).eval()
    x, t, c = torch.rand(2, 1, 28, 28), torch.tensor([0.2, 0.8]), torch.tensor([3, 9])
    args = {UnconditionalUNet: (x,), TimeConditionalUNet: (x, t), ClassConditionalUNet: (x, t, c)}[cls]
    with torch.no_grad():
        assert not torch.equal(a(*args), b(*args))
        save_weights(tmp_path / "w.pt", a, epoch=7)
        state = load_weights(tmp_path / "w.pt", b)
        assert torch.equal(a(*args), b(*args))
    assert state["epoch"] == 7
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)       # BN running stats included


def test_full_checkpoint_restores_optimizer_scheduler_and_generators(tmp_path):
    torch.manual_seed(0)
    model = UnconditionalUNet(1, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    model(torch.rand(2, 1, 28, 28)).pow(2).mean().backward()
    opt.step()
    sched.step()
    gens = {"data": torch.Generator().manual_seed(3), "noise": torch.Generator().manual_seed(4)}
    torch.rand(5, generator=gens["data"])
    save_checkpoint(tmp_path / "last.pt", model, opt, sched, epoch=1, losses=[1.0, 0.5],
                    generators=gens)
    next_data, next_noise = torch.rand(3, generator=gens["data"]), torch.rand(3, generator=gens["noise"])

    torch.manual_seed(1)
    model2 = UnconditionalUNet(1, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.ExponentialLR(opt2, gamma=0.5)
    gens2 = {"data": torch.Generator().manual_seed(99), "noise": torch.Generator().manual_seed(98)}
    state = load_checkpoint(tmp_path / "last.pt", model2, opt2, sched2, gens2)
    assert state["epoch"] == 1 and state["losses"] == [1.0, 0.5]
    assert opt2.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert sched2.last_epoch == 1
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for k in s1:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(s1[k][name]), torch.as_tensor(s2[k][name]))
    assert torch.equal(torch.rand(3, generator=gens2["data"]), next_data)
    assert torch.equal(torch.rand(3, generator=gens2["noise"]), next_noise)


# ---- atomic write ------------------------------------------------------------------------

def test_a_failing_write_leaves_the_previous_file_intact_and_no_tmp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt" / "epoch_1.pt"
    torch.manual_seed(0)
    old = trained_bn(UnconditionalUNet(1, 2))
    save_weights(path, old, epoch=1)
    real_write = checkpoint._write_all

    def crash_mid_write(fd, data):
        real_write(fd, data[: len(data) // 2])      # half the file reaches the disk
        raise OSError(errno.EIO, "I/O error (simulated)")

    torch.manual_seed(1)
    new = UnconditionalUNet(1, 2)
    monkeypatch.setattr(checkpoint, "_write_all", crash_mid_write)
    with pytest.raises(OSError, match="simulated") as err:
        save_weights(path, new, epoch=2)
    assert str(path) in str(err.value)
    monkeypatch.setattr(checkpoint, "_write_all", real_write)

    probe = UnconditionalUNet(1, 2)
    state = load_weights(path, probe)         # still the old, complete file
    assert state["epoch"] == 1
    for k, v in old.state_dict().items():
        assert torch.equal(probe.state_dict()[k], v)
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch_1.pt"]   # no .tmp left
    # and the next successful write replaces it
    save_weights(path, new, epoch=2)
    assert load_weights(path, probe)["epoch"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch_1.pt"]


# ---- wrong architecture / missing file -----------------------------------------------------

@pytest.mark.parametrize("saved, target", [
    (lambda: UnconditionalUNet(1, 4), lambda: UnconditionalUNet(1, 8)),
    (lambda: TimeConditionalUNet(1, 4), lambda: ClassConditionalUNet(1, 10, 4)),
    (lambda: UnconditionalUNet(1, 4), lambda: TimeConditionalUNet(1, 4)),
])
def test_loading_into_a_different_architecture_raises_value_error(tmp_path, saved, target):
    save_weights(tmp_path / "w.pt", saved())
    model = target()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        load_weights(tmp_path / "w.pt", model)
    msg = str(err.value)
    assert "w.pt" in msg and type(model).__name__ in msg   # says which file and which model
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])                     # nothing half-loaded


def test_missing_checkpoint_raises_file_not_found_with_a_hint(tmp_path):
    path = tmp_path / "nope" / "last.pt"
    with pytest.raises(FileNotFoundError) as err:
        load_weights(path, UnconditionalUNet(1, 2))
    msg = str(err.value)
    assert str(path) in msg
    assert "train" in msg.lower()           # tells the student what to do
    with pytest.raises(FileNotFoundError):
        load_checkpoint(path, UnconditionalUNet(1, 2))


# ---- resuming fit ----------------------------------------------------------------------------

EPOCHS = 3


@pytest.fixture(scope="module")
def data():
    images, labels = load_mnist(download=False)
    return images[:48], labels[:48]


def new_run(init_seed):
    torch.manual_seed(init_seed)
    model = ClassConditionalUNet(1, 10, 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1.0 / EPOCHS))
    return model, opt, sched


def run_fit(data, ckpt_dir, model, opt, sched, objective=None, keep_epochs=(), ema_decay=None):
    return fit(model, objective or class_flow_objective(0.1), data[0], data[1], epochs=EPOCHS,
               batch_size=16, optimizer=opt, scheduler=sched, ckpt_dir=ckpt_dir,
               keep_epochs=keep_epochs, seed=5, images_per_epoch=32, check_every=3, ema_decay=ema_decay)


class Crash(Exception):
    pass


def crashing(objective, at_call):
    calls = [0]

    def wrapped(*args):
        calls[0] += 1
        if calls[0] == at_call:
            raise Crash()
        return objective(*args)
    return wrapped


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    d = tmp_path_factory.mktemp("full")
    model, opt, sched = new_run(0)
    hist = run_fit(data, d, model, opt, sched, keep_epochs=(1, 3))
    return d, hist, model, opt


@pytest.mark.parametrize("crash_epoch", [2, 3])
def test_resumed_fit_reproduces_the_uninterrupted_losses_exactly(data, tmp_path, uninterrupted,
                                                                 crash_epoch):
    _, full, full_model, full_opt = uninterrupted
    assert len(full.losses) == EPOCHS * 2 and full.iters_per_epoch == 2

    # the session dies in the middle of epoch `crash_epoch` (its 2nd batch)
    model, opt, sched = new_run(0)
    with pytest.raises(Crash):
        run_fit(data, tmp_path, model, opt, sched,
                objective=crashing(class_flow_objective(0.1), at_call=2 * crash_epoch))
    # a fresh kernel: new objects, even a different initialisation
    model, opt, sched = new_run(123)
    torch.manual_seed(777)                   # the global RNG is in another state too
    hist = run_fit(data, tmp_path, model, opt, sched)
    assert hist.resumed_from == crash_epoch - 1
    assert hist.losses == full.losses        # exact, per iteration
    for k, v in full_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert opt.param_groups[0]["lr"] == full_opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert sched.last_epoch == EPOCHS


def test_resumed_fit_with_ema_gives_the_uninterrupted_average(data, tmp_path):
    full_model, opt, sched = new_run(0)
    run_fit(data, tmp_path / "full", full_model, opt, sched, ema_decay=0.8)
    model, opt, sched = new_run(0)
    with pytest.raises(Crash):
        run_fit(data, tmp_path / "crash", model, opt, sched, ema_decay=0.8,
                objective=crashing(class_flow_objective(0.1), at_call=2 * 2))
    model, opt, sched = new_run(123)
    run_fit(data, tmp_path / "crash", model, opt, sched, ema_decay=0.8)
    for k, v in full_model.state_dict().items():     # averaged weights and their BN statistics
        assert torch.equal(model.state_dict()[k], v), k


def test_rerunning_a_finished_fit_does_not_train_again(data, uninterrupted, capsys):
    d, full, full_model, _ = uninterrupted
    stamp = os.path.getmtime(d / "last.pt")
    model, opt, sched = new_run(42)
    calls = []

    def objective(*args):
        calls.append(1)
        return class_flow_objective(0.1)(*args)

    hist = run_fit(data, d, model, opt, sched, objective=objective)
    assert calls == []
    assert hist.losses == full.losses
    for k, v in full_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k   # the trained weights were loaded
    assert os.path.getmtime(d / "last.pt") == stamp
    assert "already trained" in capsys.readouterr().out.lower()   # and says so


def test_epoch_snapshots_exist_for_keep_epochs(uninterrupted):
    d, full, full_model, _ = uninterrupted
    assert (d / "epoch_1.pt").exists() and (d / "epoch_3.pt").exists()
    assert not (d / "epoch_2.pt").exists()
    assert full.snapshot(1) == d / "epoch_1.pt"
    m3, m1 = ClassConditionalUNet(1, 10, 4), ClassConditionalUNet(1, 10, 4)
    assert load_weights(d / "epoch_3.pt", m3)["epoch"] == 3
    assert load_weights(d / "epoch_1.pt", m1)["epoch"] == 1
    for k, v in full_model.state_dict().items():
        assert torch.equal(m3.state_dict()[k], v)   # epoch 3 = the final weights
    assert any(not torch.equal(m1.state_dict()[k], v) for k, v in full_model.state_dict().items())
