"""SIGKILL a training at random moments, inside saves too: every resume ends bitwise equal to the
uninterrupted run, and no resume ever needs a fallback (no checkpoint is ever left half-written).

Children are forked from the test process (torch already imported: a fresh interpreter costs
3-6 s here) and killed for real, so the files are whatever the kernel had when the process died.
"""
import multiprocessing
import os
import random
import select
import shutil
import signal
import time

import pytest
import torch

from course_utils.common.checkpoint import LAST
from course_utils.common.data import load_mnist
from course_utils.part_b.train import class_flow_objective, fit
from course_utils.part_b.unet import ClassConditionalUNet

EPOCHS, KEEP = 4, (2, 4)
KILLS = 12
pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs fork and SIGKILL")


def train(data, ckpt_dir):
    torch.manual_seed(0)
    model = ClassConditionalUNet(1, 10, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1 ** (1 / EPOCHS))
    hist = fit(model, class_flow_objective(0.1), data[0], data[1], epochs=EPOCHS, batch_size=16,
               optimizer=opt, scheduler=sched, ckpt_dir=ckpt_dir, keep_epochs=KEEP, seed=3,
               check_every=2)
    return model, hist


def child(data, ckpt_dir, signal_fd):
    """Train; announce every fsync (one per file written, one per rename) and linger in it, so
    that the parent's kill lands inside a save."""
    real_fsync = os.fsync

    def fsync(fd):
        os.write(signal_fd, b"f")
        time.sleep(0.01)
        real_fsync(fd)

    os.fsync = fsync
    train(data, ckpt_dir)
    os.write(signal_fd, b"done")


def run_and_kill(data, ckpt_dir, rng, mode, seconds):
    """Start a child on ``ckpt_dir``; SIGKILL it after a random number of fsyncs ("save") or a
    random time ("time"). Returns what was done: 'killed ...' or 'finished'."""
    read_fd, write_fd = os.pipe()
    proc = multiprocessing.get_context("fork").Process(target=child, args=(data, ckpt_dir, write_fd))
    proc.start()
    os.close(write_fd)
    target = rng.randint(1, 6) if mode == "save" else None
    deadline = time.monotonic() + (rng.uniform(0.05, seconds) if mode == "time" else 60)
    seen = b""
    while time.monotonic() < deadline and b"done" not in seen:
        ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            chunk = os.read(read_fd, 64)
            seen += chunk
            if not chunk or (target and seen.count(b"f") >= target):
                break
    finished = b"done" in seen
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    os.close(read_fd)
    if finished:
        return "finished"
    assert proc.exitcode == -signal.SIGKILL, f"child died on its own: exit code {proc.exitcode}"
    return f"killed ({mode}) after {seen.count(b'f')} fsyncs"


@pytest.fixture(scope="module")
def data():
    images, labels = load_mnist(download=False)
    return images[:32], labels[:32]


def test_sigkill_at_random_moments_then_resume_is_bitwise_the_uninterrupted_run(data, tmp_path, capsys):
    start = time.monotonic()
    full_model, full = train(data, tmp_path / "full")
    seconds = time.monotonic() - start
    rng = random.Random(12)
    chain, kills, moments = tmp_path / "chain", 0, []
    for attempt in range(10 * KILLS):
        if kills == KILLS:
            break
        what = run_and_kill(data, chain, rng, "save" if kills % 2 else "time", seconds)
        if what == "finished":            # the run outlived its kill: start a new chain
            shutil.rmtree(chain)
            continue
        kills += 1
        moments.append(what)
        # resume a copy to the end (the chain itself goes on being killed)
        copy = tmp_path / f"resume{kills}"
        shutil.copytree(chain, copy) if chain.exists() else copy.mkdir()
        capsys.readouterr()
        model, hist = train(data, copy)
        out = capsys.readouterr().out
        assert "Skipped" not in out, f"kill {kills} ({what}) left a damaged file: {out}"
        assert hist.losses == full.losses, f"kill {kills} ({what})"
        for k, v in full_model.state_dict().items():
            assert torch.equal(model.state_dict()[k], v), f"kill {kills} ({what}): {k}"
        for epoch in KEEP:
            a, b = (torch.load(d / f"epoch_{epoch}.pt", weights_only=False)["model"] for d in (copy, tmp_path / "full"))
            assert all(torch.equal(a[k], b[k]) for k in b), f"kill {kills} ({what}): epoch_{epoch}.pt"
        assert not list(copy.glob("*.tmp")) and (copy / LAST).exists()
    assert kills == KILLS and sum("save" in m for m in moments) >= KILLS // 2
    print("\n".join(moments), f"\none run: {seconds:.2f} s; all: {time.monotonic() - start:.1f} s")
