"""Two sessions on one run folder: one writer at a time, and the second one is told so.

Real processes (forked from the test process: torch is already imported) train the same run. On
one file system, and on two folders kept in sync by a syncer that shows each side's writes to the
other only ``DELAY`` seconds later, as Google Drive does between two Colab machines.
"""
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils.common import checkpoint, run_claim
from course_utils.common.checkpoint import LAST
from course_utils.common.run_claim import RunClaim, RunInUse, lapse_seconds
from course_utils.part_b import train as train_module
from course_utils.part_b.train import fit

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs fork")
DELAY = 1.0
IMAGES = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def train(folder, epochs=6, pause=0.0, hook=None):
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    calls = [0]

    def objective(m, x, y, g):
        calls[0] += 1
        if hook is not None:
            hook(calls[0])
        time.sleep(pause)
        return (m(x) - x.flip(-1)).pow(2).mean()

    fit(model, objective, IMAGES, epochs=epochs, batch_size=4, seed=1, keep_epochs=(2,),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), ckpt_dir=folder)
    return model


def reference(epochs):
    return train(None, epochs).state_dict()


# ---- workers --------------------------------------------------------------------------------

def worker(folder, go, result, host, epochs, pause, lapse):
    """Wait for ``go``, train the run in ``folder``, write what happened to ``result``."""
    if host:
        os.environ["COURSE_SESSION_HOST"] = host
    os.environ["COURSE_CLAIM_LAPSE_S"] = str(lapse)
    writes = []   # every write this session makes into the run folder
    real_write, real_save, real_check = RunClaim._write, checkpoint.save_atomic, train_module.check_writable
    RunClaim._write = lambda self: (writes.append(self.path.name), real_write(self))[1]
    checkpoint.save_atomic = lambda obj, path: (writes.append(Path(path).name), real_save(obj, path))[1]
    train_module.check_writable = lambda f, **k: (writes.append(".write_test"), real_check(f, **k))[1]
    while not Path(go).exists():
        time.sleep(0.01)
    out = {"session": run_claim.session()["session"], "pid": os.getpid()}
    try:
        model = train(folder, epochs, pause)
        out.update(outcome="finished", weights={k: v.tolist() for k, v in model.state_dict().items()})
    except RunInUse as err:
        out.update(outcome="stopped", message=str(err))
    out["writes"] = writes
    Path(result).write_text(json.dumps(out))


def start(name, folder, tmp_path, host=None, epochs=40, pause=0.05, lapse=60):
    go, result = tmp_path / f"go_{name}", tmp_path / f"result_{name}.json"
    proc = multiprocessing.get_context("fork").Process(
        target=worker, args=(str(folder), str(go), str(result), host, epochs, pause, lapse))
    proc.start()
    proc.go, proc.result = go, result
    return proc


def finish(proc, timeout=120):
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        pytest.fail("a training process hung")
    assert proc.exitcode == 0, f"the worker crashed (exit code {proc.exitcode})"
    return json.loads(proc.result.read_text())


def wait_for(condition, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def claims(folder):
    return sorted(p.name for p in Path(folder).glob("writer_*.json"))


def writers(folder):
    return {p.name: torch.load(p, weights_only=False).get("writer") or
            torch.load(p, weights_only=False)["resume"]["writer"] for p in Path(folder).glob("*.pt")}


def same_weights(weights: dict, state: dict) -> bool:
    return all(torch.equal(torch.tensor(weights[k]), v) for k, v in state.items())


# ---- one file system --------------------------------------------------------------------------

def test_second_session_stops_before_writing_and_the_first_trains_undisturbed(tmp_path):
    folder = tmp_path / "run"
    a, b = start("a", folder, tmp_path), start("b", folder, tmp_path, pause=0.0)
    a.go.touch()
    wait_for(lambda: claims(folder) and (folder / LAST).exists(), what="A's claim and first epoch")
    b.go.touch()
    rb = finish(b)
    assert rb["outcome"] == "stopped" and rb["writes"] == [], rb
    for part in ("another session is training this run", f"process {a.pid}", "last wrote",
                 "before writing anything", "wait for the other session", "another name",
                 "claim lapses, 60 s after its last write", "name=", "delete"):
        assert part in rb["message"], (part, rb["message"])
    ra = finish(a)
    assert ra["outcome"] == "finished", ra
    assert same_weights(ra["weights"], reference(40)), "the first session's run was disturbed"
    assert set(writers(folder).values()) == {ra["session"]}
    assert claims(folder) == [], "a finished training must release its claim"
    # once the first has finished, the same call in another session just loads the result
    again = start("again", folder, tmp_path)
    again.go.touch()
    ragain = finish(again)
    assert ragain["outcome"] == "finished" and ragain["writes"] == [], ragain


def test_claim_of_another_machine_holds_until_it_lapses(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CLAIM_LAPSE_S", "30")
    folder = tmp_path / "run"
    folder.mkdir()
    stale = folder / "writer_colab-b-77-abc123.json"
    now = time.time()
    stale.write_text(json.dumps({"session": "colab-b-77-abc123", "host": "colab-b", "pid": 77,
                                 "claimed": now - 100, "last_write": now - 5}))
    os.utime(stale, (now - 5, now - 5))
    with pytest.raises(RunInUse) as err:
        train(folder)
    message = str(err.value)
    for part in ("machine 'colab-b', process 77", "last wrote 5 s ago", "30 s after its last write",
                 str(stale)):
        assert part in message, (part, message)
    assert sorted(os.listdir(folder)) == [stale.name], "nothing may be written into a claimed run"

    stale.write_text(json.dumps({"session": "colab-b-77-abc123", "host": "colab-b", "pid": 77,
                                 "claimed": now - 100, "last_write": now - 31}))
    os.utime(stale, (now - 31, now - 31))
    model = train(folder)   # lapsed: taken over
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference(6).items())
    assert claims(folder) == []


def test_claim_of_a_dead_process_on_this_machine_lapses_at_once(tmp_path):
    proc = multiprocessing.get_context("fork").Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    folder = tmp_path / "run"
    folder.mkdir()
    me = run_claim.session()
    (folder / f"writer_x-{proc.pid}.json").write_text(json.dumps(
        {"session": f"x-{proc.pid}", "host": me["host"], "pid": proc.pid, "claimed": time.time(),
         "last_write": time.time()}))
    model = train(folder)   # the dead process's claim is taken over: the run trains as if alone
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference(6).items())
    assert claims(folder) == []


def test_an_interrupted_training_releases_its_claim(tmp_path):
    def interrupt(call):
        if call == 5:
            assert len(claims(tmp_path)) == 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, hook=interrupt)
    assert claims(tmp_path) == [] and (tmp_path / LAST).exists()


def test_another_writer_getting_in_stops_the_session_before_its_next_save(tmp_path):
    def foreign_write(call):
        if call == 5:   # in epoch 3: another machine's epoch-2 checkpoint arrives through the sync
            state = torch.load(tmp_path / LAST, weights_only=False)
            state["writer"] = "colab-b-77-abc123"
            torch.save(state, tmp_path / LAST)

    with pytest.raises(RunInUse, match=r"another session wrote into this run.*session colab-b-77-abc123 "
                                       r"\(epoch 2\).*without saving epoch 3.*one session only"):
        train(tmp_path, hook=foreign_write)
    assert torch.load(tmp_path / LAST, weights_only=False)["writer"] == "colab-b-77-abc123"
    assert claims(tmp_path) == []


def test_an_older_claim_that_shows_up_late_wins(tmp_path):
    def late_claim(call):
        if call == 3:   # a session that claimed before this one; its claim synced only now
            (tmp_path / "writer_colab-b-77-abc123.json").write_text(json.dumps(
                {"session": "colab-b-77-abc123", "host": "colab-b", "pid": 77,
                 "claimed": time.time() - 60, "last_write": time.time()}))

    with pytest.raises(RunInUse, match=r"machine 'colab-b'.*without saving epoch 2 \(the two sessions "
                                       r"started within the time the folder takes to sync"):
        train(tmp_path, hook=late_claim)
    assert torch.load(tmp_path / LAST, weights_only=False)["epoch"] == 1


def test_a_younger_claim_does_not_stop_the_older_session(tmp_path):
    def young_claim(call):
        if call == 3:
            (tmp_path / "writer_colab-b-77-abc123.json").write_text(json.dumps(
                {"session": "colab-b-77-abc123", "host": "colab-b", "pid": 77,
                 "claimed": time.time(), "last_write": time.time()}))

    train(tmp_path, hook=young_claim)
    assert torch.load(tmp_path / LAST, weights_only=False)["epoch"] == 6


def test_lapse_setting_is_checked(monkeypatch):
    monkeypatch.setenv("COURSE_CLAIM_LAPSE_S", "soon")
    with pytest.raises(ValueError, match="COURSE_CLAIM_LAPSE_S must be a number"):
        lapse_seconds()
    monkeypatch.setenv("COURSE_CLAIM_LAPSE_S", "-1")
    with pytest.raises(ValueError, match="positive"):
        lapse_seconds()
    monkeypatch.delenv("COURSE_CLAIM_LAPSE_S")
    assert lapse_seconds() == 600


# ---- two machines, one late-syncing folder ----------------------------------------------------

class DelayedSync(threading.Thread):
    """Two folders, one per machine, that each see the other's writes (and deletions) ``delay``
    seconds late: what two Colab runtimes see of one Google Drive folder. Last writer wins."""

    def __init__(self, a: Path, b: Path, delay: float):
        super().__init__(daemon=True)
        self.sides, self.delay = (a, b), delay
        self.seen = [{}, {}]
        self.pending = []
        self.stopping = threading.Event()
        for side in self.sides:
            side.mkdir(parents=True, exist_ok=True)

    def _files(self, side: Path) -> dict:
        out = {}
        for p in side.iterdir():
            if p.name.endswith(".tmp") or p.name == ".write_test":
                continue
            try:
                st = p.stat()
                out[p.name] = ((st.st_mtime_ns, st.st_size), p)
            except OSError:
                pass
        return out

    def _scan(self, i: int) -> None:
        now = self._files(self.sides[i])
        for name, (sig, path) in now.items():
            if self.seen[i].get(name) != sig:
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                self.seen[i][name] = sig
                self.pending.append((time.monotonic() + self.delay, 1 - i, name, data))
        for name in set(self.seen[i]) - set(now):
            del self.seen[i][name]
            self.pending.append((time.monotonic() + self.delay, 1 - i, name, None))

    def _apply(self, j: int, name: str, data) -> None:
        target = self.sides[j] / name
        if data is None:
            target.unlink(missing_ok=True)
            self.seen[j].pop(name, None)
            return
        tmp = self.sides[j] / f"{name}.sync.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
        st = target.stat()
        self.seen[j][name] = (st.st_mtime_ns, st.st_size)

    def step(self, flush=False) -> None:
        self._scan(0)
        self._scan(1)
        due = [op for op in self.pending if flush or op[0] <= time.monotonic()]
        self.pending = [op for op in self.pending if op not in due]
        for _, j, name, data in due:
            self._apply(j, name, data)

    def run(self):
        while not self.stopping.is_set():
            self.step()
            time.sleep(0.02)

    def stop(self):
        self.stopping.set()
        self.join()
        for _ in range(3):
            self.step(flush=True)


def test_two_machines_on_a_late_syncing_folder(tmp_path):
    """Both start within the sync delay (neither sees the other's claim yet); once they do, at
    least one stops with the message naming the other machine, never both finish, and a rerun in
    one session resumes to bitwise the uninterrupted run."""
    drive_a, drive_b = tmp_path / "machine_a" / "run", tmp_path / "machine_b" / "run"
    a = start("a", drive_a, tmp_path, host="machine-a", epochs=60, pause=0.03)
    b = start("b", drive_b, tmp_path, host="machine-b", epochs=60, pause=0.03)
    sync = DelayedSync(drive_a, drive_b, DELAY)
    sync.start()
    a.go.touch()
    b.go.touch()
    ra, rb = finish(a), finish(b)
    sync.stop()
    outcomes = {ra["outcome"], rb["outcome"]}
    print(*(f"{r['session']}: {r['outcome']} {r.get('message', '')[:160]}" for r in (ra, rb)), sep="\n")
    assert "stopped" in outcomes, "two sessions trained one run to the end"
    for mine, other in ((ra, "machine-b"), (rb, "machine-a")):
        if mine["outcome"] == "stopped":
            assert f"machine {other!r}" in mine["message"] or "session machine-" in mine["message"], mine
            assert "one session" in mine["message"] or "wait for the other session" in mine["message"]
    assert claims(drive_a) == claims(drive_b) == [], "a stopped session must release its claim"
    model = train(drive_a, epochs=60)   # one session now: resumes from whatever is newest
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference(60).items())


def test_a_session_started_after_the_claim_synced_stops_before_writing(tmp_path):
    drive_a, drive_b = tmp_path / "machine_a" / "run", tmp_path / "machine_b" / "run"
    a = start("a", drive_a, tmp_path, host="machine-a", epochs=60, pause=0.03)
    b = start("b", drive_b, tmp_path, host="machine-b", pause=0.0)
    sync = DelayedSync(drive_a, drive_b, DELAY)
    sync.start()
    a.go.touch()
    wait_for(lambda: claims(drive_a), what="A's claim")
    assert claims(drive_b) == [], "the syncer showed the claim without delay"
    wait_for(lambda: claims(drive_b), what="A's claim on machine B")
    b.go.touch()
    rb = finish(b)
    assert rb["outcome"] == "stopped" and rb["writes"] == [], rb
    assert "machine 'machine-a'" in rb["message"] and "before writing anything" in rb["message"]
    ra = finish(a)
    sync.stop()
    assert ra["outcome"] == "finished", ra
    assert same_weights(ra["weights"], reference(60))
    assert set(writers(drive_b).values()) == {ra["session"]}
