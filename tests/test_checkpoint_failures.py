"""Checkpoints under failure: other settings, NaN weights, damaged files, full or unwritable disks."""
import errno
import os

import pytest
import torch

from course_utils.common import checkpoint
from course_utils.common.checkpoint import (LAST, CheckpointMismatch, CorruptCheckpoint,
                                            check_writable, load_checkpoint, load_weights, save_atomic,
                                            save_weights)
from course_utils.common.data import load_mnist
from course_utils.part_b.train import class_flow_objective, fit
from course_utils.part_b.unet import ClassConditionalUNet

EPOCHS = 3


@pytest.fixture(scope="module")
def data():
    images, labels = load_mnist(download=False)
    return images[:32], labels[:32]


def train(data, ckpt_dir, *, seed=5, lr=1e-2, epochs=EPOCHS, batch_size=16, gamma=None, ema_decay=None,
          objective=None, init_seed=0, **kwargs):
    """A 2-epoch-step run of a D=2 class-conditioned UNet; returns (model, history)."""
    torch.manual_seed(init_seed)
    model = ClassConditionalUNet(1, 10, 2)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma or 0.1 ** (1 / epochs))
    hist = fit(model, objective or class_flow_objective(0.1), data[0], data[1], epochs=epochs,
               batch_size=batch_size, optimizer=opt, scheduler=sched, ckpt_dir=ckpt_dir, seed=seed,
               keep_epochs=(1, 2, 3), ema_decay=ema_decay, check_every=1, **kwargs)
    return model, hist


def same_weights(a, b):
    return all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


class Kill(Exception):
    pass


def killed_at(call):
    calls = [0]

    def objective(*args):
        calls[0] += 1
        if calls[0] == call:
            raise Kill()
        return class_flow_objective(0.1)(*args)
    return objective


@pytest.fixture(scope="module")
def full(data, tmp_path_factory):
    return train(data, tmp_path_factory.mktemp("full"))


# ---- what a checkpoint records, and a resume with other settings ------------------------------

def test_checkpoint_records_the_run_settings_and_versions(full):
    state = torch.load(full[1].ckpt_dir / LAST, weights_only=False)
    assert state["run"] == {"seed": 5, "optimizer": "Adam", "lr": 1e-2,
                            "schedule": {"class": "ExponentialLR", "gamma": pytest.approx(0.1 ** (1 / 3))},
                            "epochs": 3, "batch_size": 16, "images_per_epoch": 32, "ema_decay": None}
    assert state["arch"] == {"class": "ClassConditionalUNet", "in_channels": 1, "num_classes": 10,
                             "num_hiddens": 2}
    assert state["versions"] == {"torch": torch.__version__, "course_utils": "0.1.0"}


MISMATCHES = {
    "seed": (dict(seed=123), "seed: saved 5, now 123"),
    "lr": (dict(lr=5e-2), "lr: saved 0.01, now 0.05"),
    "epochs": (dict(epochs=4), "epochs: saved 3, now 4"),
    "batch size": (dict(batch_size=8), "batch_size: saved 16, now 8"),
    "images per epoch": (dict(images_per_epoch=16), "images_per_epoch: saved 32, now 16"),
    "schedule": (dict(gamma=0.5), "schedule: saved {'class': 'ExponentialLR', 'gamma': 0.46"),
    "ema": (dict(ema_decay=0.9), "ema_decay: saved None, now 0.9"),
}


@pytest.mark.parametrize("name", MISMATCHES)
@pytest.mark.parametrize("finished", [True, False])
def test_resuming_with_other_settings_says_what_differs_and_trains_nothing(data, tmp_path, full, name,
                                                                            finished):
    change, expected = MISMATCHES[name]
    if finished:
        ckpt = full[1].ckpt_dir
    else:
        with pytest.raises(Kill):
            train(data, tmp_path, objective=killed_at(4))      # dies in epoch 2
        ckpt = tmp_path
    stamp = os.path.getmtime(ckpt / LAST)
    calls = []

    def objective(*args):
        calls.append(1)
        return class_flow_objective(0.1)(*args)

    with pytest.raises(CheckpointMismatch) as err:
        train(data, ckpt, objective=objective, **change)
    msg = str(err.value)
    assert expected in msg and str(ckpt / LAST) in msg
    assert "set these back" in msg and "fresh folder" in msg        # both ways out
    assert calls == [] and os.path.getmtime(ckpt / LAST) == stamp


def test_on_mismatch_keep_resumes_the_saved_run_and_says_so(data, tmp_path, full, capsys):
    with pytest.raises(Kill):
        train(data, tmp_path, objective=killed_at(4))
    model, hist = train(data, tmp_path, lr=5e-2, on_mismatch="keep")
    assert "lr: saved 0.01, now 0.05" in capsys.readouterr().out
    assert hist.losses == full[1].losses and same_weights(model, full[0])   # the saved lr was used


def test_another_seed_gets_its_own_folder_in_the_recipes(tmp_path, monkeypatch, data):
    from course_utils.common.profiles import get_profile
    from course_utils.part_b.recipes import train_flow

    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    profile = get_profile("smoke", flow_epochs=1, keep_epochs=())
    train_flow(data[0], data[1], profile, "cpu", class_conditioned=True, seed=0)
    train_flow(data[0], data[1], profile, "cpu", class_conditioned=True, seed=123)
    assert sorted(p.name for p in (tmp_path / "smoke").iterdir()) == ["flow_class", "flow_class_seed123"]


# ---- non-finite weights are never saved -------------------------------------------------------

def test_weights_that_blow_up_in_the_last_step_of_an_epoch_are_not_saved(data, tmp_path):
    """The loss of a step is computed before its update: only the weights show this failure."""
    def blow_up_at(call):
        calls = []

        def objective(m, x, y, g):
            calls.append(1)
            loss = class_flow_objective(0.1)(m, x, y, g)
            return loss * 1e38 if len(calls) == call else loss   # a finite loss, inf gradients
        return objective

    # the last step of epoch 2; then a rerun, which resumes after epoch 1 and repeats it
    for call in (4, 2):
        with pytest.raises(FloatingPointError) as err:
            train(data, tmp_path, objective=blow_up_at(call))
        msg = str(err.value)
        assert "weights became NaN or inf in epoch 2" in msg
        assert "lower the learning rate" in msg and "fresh folder" in msg    # advice that works
        state = torch.load(tmp_path / LAST, weights_only=False)
        assert state["epoch"] == 1 and not checkpoint.nonfinite(state["model"])
        assert not (tmp_path / "epoch_2.pt").exists()


def test_save_weights_refuses_non_finite_weights(tmp_path):
    model = ClassConditionalUNet(1, 10, 2)
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    with pytest.raises(FloatingPointError, match="refusing to save .*w.pt.*NaN/inf"):
        save_weights(tmp_path / "w.pt", model)
    assert list(tmp_path.iterdir()) == []


# ---- snapshots before last.pt -------------------------------------------------------------------

def test_epoch_snapshot_is_written_before_last_pt(data, tmp_path, full, monkeypatch):
    """Killed between the two writes of epoch 2: epoch_2.pt exists, and the resume is exact."""
    real = checkpoint.save_atomic

    def die_before_last_of_epoch_2(obj, path):
        if path.name == LAST and obj["epoch"] == 2:
            raise Kill()
        return real(obj, path)

    monkeypatch.setattr("course_utils.common.checkpoint.save_atomic", die_before_last_of_epoch_2)
    with pytest.raises(Kill):
        train(data, tmp_path)
    monkeypatch.setattr("course_utils.common.checkpoint.save_atomic", real)
    assert (tmp_path / "epoch_2.pt").exists()
    assert torch.load(tmp_path / LAST, weights_only=False)["epoch"] == 1
    model, hist = train(data, tmp_path)
    assert hist.losses == full[1].losses and same_weights(model, full[0])
    probe = ClassConditionalUNet(1, 10, 2)
    load_weights(tmp_path / "epoch_2.pt", probe)
    full_probe = ClassConditionalUNet(1, 10, 2)
    load_weights(full[1].ckpt_dir / "epoch_2.pt", full_probe)
    assert same_weights(probe, full_probe)


def test_save_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(f"replace {os.path.basename(a)}"),
                                                     real_replace(a, b))[1])
    save_atomic({"x": torch.ones(3)}, tmp_path / "a.pt")
    assert events == ["fsync", "replace a.pt.tmp", "fsync"]


# ---- damaged checkpoint files ---------------------------------------------------------------------

def damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif how == "zero bytes":
        path.write_bytes(b"")
    elif how == "foreign":
        torch.save(ClassConditionalUNet(1, 10, 2).state_dict(), path)      # a bare state_dict
    elif how == "nan":   # written by an older version that did not check
        state = torch.load(path, weights_only=False)
        next(iter(state["model"].values())).fill_(float("nan"))
        torch.save(state, path)


REASONS = {"truncated": "truncated or damaged", "garbage": "not a PyTorch file", "zero bytes": "empty (0 bytes)",
           "foreign": "not a checkpoint saved by course_utils", "nan": "NaN/inf weights"}


@pytest.mark.parametrize("how", REASONS)
def test_a_damaged_file_is_named_as_such(tmp_path, full, how):
    path = tmp_path / "epoch_3.pt"
    path.write_bytes((full[1].ckpt_dir / "epoch_3.pt").read_bytes())
    damage(path, how)
    for load in (load_weights, load_checkpoint):
        with pytest.raises(CorruptCheckpoint) as err:
            load(path, ClassConditionalUNet(1, 10, 2))
        msg = str(err.value)
        assert str(path) in msg and REASONS[how] in msg
        assert "delete it" in msg.lower()


@pytest.mark.parametrize("how", REASONS)
def test_a_damaged_last_pt_falls_back_to_the_newest_good_snapshot(data, tmp_path, full, how, capsys):
    with pytest.raises(Kill):
        train(data, tmp_path, objective=killed_at(6))        # dies in epoch 3; last.pt = epoch 2
    damage(tmp_path / LAST, how)
    damage(tmp_path / "epoch_2.pt", "truncated")           # and the newest snapshot too
    model, hist = train(data, tmp_path)
    out = capsys.readouterr().out
    skipped = out.split("Skipped unusable checkpoints: ")[1]
    assert skipped.startswith("last.pt") and REASONS[how] in skipped.split(";")[0]
    assert "epoch_2.pt" in skipped and "Resuming from epoch_1.pt (epoch 1) instead" in out
    assert hist.resumed_from == 1
    assert hist.losses == full[1].losses and same_weights(model, full[0])


def test_a_deleted_last_pt_resumes_from_the_newest_snapshot_and_says_so(data, tmp_path, full, capsys):
    with pytest.raises(Kill):
        train(data, tmp_path, objective=killed_at(6))
    (tmp_path / LAST).unlink()
    model, hist = train(data, tmp_path)
    assert "No last.pt" in capsys.readouterr().out and hist.resumed_from == 2
    assert hist.losses == full[1].losses and same_weights(model, full[0])


def test_a_folder_without_any_usable_checkpoint_says_so(data, tmp_path):
    with pytest.raises(Kill):
        train(data, tmp_path, objective=killed_at(4))
    damage(tmp_path / LAST, "zero bytes")
    damage(tmp_path / "epoch_1.pt", "garbage")
    with pytest.raises(CorruptCheckpoint) as err:
        train(data, tmp_path)
    msg = str(err.value)
    assert "last.pt is empty" in msg and "epoch_1.pt" in msg and "delete the folder" in msg


# ---- unwritable folders and full disks --------------------------------------------------------------

def test_an_unwritable_folder_fails_before_training(data, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    calls = []

    def objective(*args):
        calls.append(1)
        return class_flow_objective(0.1)(*args)

    with pytest.raises(OSError) as err:
        train(data, tmp_path / "file" / "run", objective=objective)
    assert str(tmp_path / "file") in str(err.value) and "COURSE_CKPT_DIR" in str(err.value)
    assert calls == []


def test_a_folder_without_write_permission_is_named(tmp_path, monkeypatch):
    def denied(fd, data):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(checkpoint, "_write_all", denied)
    with pytest.raises(PermissionError, match=rf"{tmp_path} is not writable.*COURSE_CKPT_DIR"):
        check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_too_little_free_space_fails_before_training(tmp_path):
    with pytest.raises(OSError, match=r"MB free.*is full.*empty the trash.*COURSE_CKPT_DIR"):
        check_writable(tmp_path, need_bytes=10 ** 18)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_mid_training_names_the_fix_and_keeps_the_last_good_checkpoint(data, tmp_path, full):
    calls = []

    def objective(*args):      # at epoch 2, the next write of last.pt meets a full disk
        calls.append(1)
        if len(calls) == 3:
            os.symlink("/dev/full", tmp_path / "last.pt.tmp")
        return class_flow_objective(0.1)(*args)

    with pytest.raises(OSError) as err:
        train(data, tmp_path, objective=objective)
    assert err.value.errno == errno.ENOSPC
    msg = str(err.value)
    assert str(tmp_path / LAST) in msg and "full" in msg and "empty the trash" in msg
    assert not list(tmp_path.glob("*.tmp"))                       # nothing left behind
    assert torch.load(tmp_path / LAST, weights_only=False)["epoch"] == 1
    model, hist = train(data, tmp_path)                          # space freed: resume, exactly
    assert hist.losses == full[1].losses and same_weights(model, full[0])


def test_stale_tmp_files_of_a_killed_save_are_removed(tmp_path):
    (tmp_path / "last.pt.tmp").write_bytes(b"PK\x03\x04 half")
    (tmp_path / "notes.tmp").write_text("not ours")
    check_writable(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_disk_that_is_already_full_fails_before_training(tmp_path):
    os.symlink("/dev/full", tmp_path / ".write_test")        # the probe lands on a full device
    with pytest.raises(OSError) as err:
        check_writable(tmp_path)
    assert err.value.errno == errno.ENOSPC and "is full" in str(err.value) and str(tmp_path) in str(err.value)
    assert list(tmp_path.iterdir()) == []
