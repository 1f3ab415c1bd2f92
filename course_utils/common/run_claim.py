"""One writer per run folder, also across machines that share it through a late-syncing client.

Two sessions (two Colab runtimes on one Drive folder, say) training the same run would overwrite
each other's ``last.pt`` every epoch and leave a run that neither trained. Google Drive's FUSE
mount has no cross-machine locks and shows another machine's writes late, so the guarantee rests
on three parts, none of which needs a lock:

1. **A claim file per session**, ``writer_<session>.json`` in the run folder, written only by
   that session (never a file two machines write, which a sync client would merge by "last writer
   wins"). It records the machine, the process and when the session last wrote; the training loop
   rewrites it every ``heartbeat`` seconds (``lapse / 10``, at most a minute) and deletes it when
   training ends, fails or is interrupted.
2. **Before anything is written** (even the writability probe), a session reads the claims: a
   live claim of another session stops it with ``RunInUse``, naming that session, when it last
   wrote and what to do. A claim lapses ``lapse_seconds()`` after its last write (10 minutes,
   ``COURSE_CLAIM_LAPSE_S`` overrides), or at once when it names a process on this machine that
   no longer runs (a killed kernel, a restarted runtime).
3. **Before every save**, a session checks that its claim is still there, that no older live
   claim has appeared (two sessions that started within the sync delay see each other only
   later: the older claim wins) and that the newest checkpoint, ``last.pt``, is still the one it
   wrote (each checkpoint records its writer). Otherwise it stops, again with ``RunInUse``, having
   saved nothing of that epoch; every file left is a whole checkpoint of one session's run, and
   a rerun in one session resumes from the newest.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_LAPSE_S = 600.0
CLAIM_PREFIX = "writer_"
_SESSION: dict | None = None
_HELD: list = []    # claims acquired by the calls that ``releasing`` wraps, in this process


class RunInUse(RuntimeError):
    """Another session trains this run folder (or wrote into it while this one trained)."""


def lapse_seconds() -> float:
    """Seconds without a write after which a session's claim on a run lapses."""
    text = os.environ.get("COURSE_CLAIM_LAPSE_S", "")
    try:
        value = float(text) if text.strip() else DEFAULT_LAPSE_S
    except ValueError:
        raise ValueError(f"COURSE_CLAIM_LAPSE_S must be a number of seconds, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"COURSE_CLAIM_LAPSE_S must be a positive number of seconds, got {text!r}")
    return value


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), so that a reused pid is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _boot_id() -> str | None:
    """Unique per boot of a (virtual) machine: two Colab VMs never share it, even with one hostname."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def session() -> dict:
    """This process's identity (a forked child gets its own)."""
    global _SESSION
    pid = os.getpid()
    if _SESSION is None or _SESSION["pid"] != pid:
        host = os.environ.get("COURSE_SESSION_HOST") or socket.gethostname() or "unknown-machine"
        safe = re.sub(r"[^A-Za-z0-9.-]+", "-", host)[:40]
        _SESSION = {"session": f"{safe}-{pid}-{uuid.uuid4().hex[:6]}", "host": host, "pid": pid,
                    "pid_start": _proc_start(pid), "boot": _boot_id()}
    return _SESSION


def _process_gone(info: dict) -> bool:
    """True for a claim of a process on this machine that no longer runs."""
    me = session()
    if info.get("host") != me["host"] or not isinstance(info.get("pid"), int):
        return False
    if info.get("boot") and me["boot"] and info["boot"] != me["boot"]:
        return False   # same name, another machine (or a reboot, where the lapse applies)
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    start = _proc_start(info["pid"])
    return bool(start and info.get("pid_start") and start != info["pid_start"])


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%H:%M:%S UTC")


def _signature(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class Claim:
    """A claim file as read: its session, when it last wrote, and whether it still holds."""

    def __init__(self, path: Path, lapse: float, now: float):
        self.path = path
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = now
        try:
            self.info = json.loads(path.read_text())
            if not isinstance(self.info, dict):
                raise ValueError
        except (OSError, ValueError):   # half-synced: it still says someone is there
            self.info = {}
        # The later of the two clocks: a sync client that stamps its copy later only delays a lapse.
        self.last_write = max(float(self.info.get("last_write") or 0), mtime)
        self.claimed = float(self.info.get("claimed") or self.last_write)
        self.session = self.info.get("session") or path.stem[len(CLAIM_PREFIX):]
        self.age = now - self.last_write
        self.gone = _process_gone(self.info)
        self.live = not self.gone and self.age < lapse

    def order(self):
        return (self.claimed, self.session)

    def describe(self) -> str:
        host, pid = self.info.get("host"), self.info.get("pid")
        where = f" on machine {host!r}, process {pid}" if host else " (its claim file is not readable yet)"
        return f"session {self.session}{where}"

    def last_wrote(self) -> str:
        return f"last wrote {_ago(self.age)} ago (at {_clock(self.last_write)})"


class RunClaim:
    """This session's claim on one run folder; see the module docstring for the protocol."""

    def __init__(self, folder: str | Path, last_name: str = "last.pt"):
        self.folder = Path(folder)
        self.me = dict(session())
        self.path = self.folder / f"{CLAIM_PREFIX}{self.me['session']}.json"
        self.last = self.folder / last_name
        self.lapse = lapse_seconds()
        self.heartbeat = min(60.0, self.lapse / 10)
        self.held = False
        self.claimed: float | None = None
        self._next_beat = 0.0
        self._expected = _signature(self.last)   # last.pt as this session found it
        self.epoch: int | None = None

    @property
    def session(self) -> str:
        return self.me["session"]

    # ---- reading the folder

    def claims(self) -> list[Claim]:
        """The other sessions' claims in the folder."""
        now = time.time()
        try:
            paths = sorted(self.folder.glob(f"{CLAIM_PREFIX}*.json"))
        except OSError:
            return []
        return [Claim(p, self.lapse, now) for p in paths if p.name != self.path.name]

    def _lapse_text(self) -> str:
        return (f"{_ago(self.lapse)} after its last write (COURSE_CLAIM_LAPSE_S), or at once if it "
                "ran on this machine")

    def _in_use(self, other: Claim, before: str) -> RunInUse:
        return RunInUse(
            f"another session is training this run: {self.folder} is claimed by {other.describe()}, "
            f"which {other.last_wrote()}. Two sessions training one run overwrite each other's "
            f"checkpoints, so this session stopped {before}. What to do: wait for the other session "
            "to finish (then rerun: the finished run is loaded, not retrained); or stop it and rerun "
            "here (interrupting its training cell frees the run at once, once the folder has synced; "
            "a runtime that was disconnected or died frees it when its claim lapses, "
            f"{self._lapse_text()}); or train under another name (name=... of train_flow / "
            "train_denoiser, or another COURSE_CKPT_DIR). If you are sure that session is dead, "
            f"delete {other.path} to take over now.")

    def check_free(self) -> None:
        """Read-only: raise ``RunInUse`` if another session holds a live claim on the folder."""
        live = [c for c in self.claims() if c.live]
        if live:
            raise self._in_use(max(live, key=lambda c: c.last_write), "before writing anything")

    # ---- writing

    def _write(self) -> None:
        now = time.time()
        info = {**self.me, "claimed": self.claimed, "last_write": now, "epoch": self.epoch,
                "lapse_s": self.lapse, "note": "this session is training the run; see "
                "course_utils/common/run_claim.py"}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(info))
            os.replace(tmp, self.path)
        except OSError as err:
            from .checkpoint import write_error

            raise write_error(err, self.path) from err
        self._next_beat = time.monotonic() + self.heartbeat

    def acquire(self) -> "RunClaim":
        """Claim the folder for this session (after ``check_free``: raises ``RunInUse`` if taken)."""
        self.check_free()
        self.folder.mkdir(parents=True, exist_ok=True)
        for other in self.claims():
            if not other.live:                     # lapsed or its process is gone: take over
                try:
                    other.path.unlink()
                except OSError:
                    pass
        self.claimed = time.time()
        self._write()
        self.held = True
        _HELD.append(self)
        # Two sessions that claimed at the same moment on one file system both see both claims now.
        rival = self._older_rival()
        if rival is not None:
            self.release()
            raise self._in_use(rival, "before writing anything")
        return self

    def _older_rival(self) -> Claim | None:
        older = [c for c in self.claims() if c.live and c.order() < (self.claimed, self.session)]
        return min(older, key=Claim.order) if older else None

    def _verify(self, doing: str) -> None:
        if not self.path.exists():
            self.held = False
            raise RunInUse(
                f"this session's claim on {self.folder} was removed while it trained (by another "
                f"session that took the run over after {_ago(self.lapse)} without writes from this "
                "one, or by hand), so it stopped without " + doing + ". Check which session trains "
                "the run now; rerun in one session only: it resumes from the newest checkpoint.")
        rival = self._older_rival()
        if rival is not None:
            raise self._in_use(rival, f"without {doing} (the two sessions started within the "
                                      "time the folder takes to sync; the older one keeps the run)")

    def beat(self) -> None:
        """Cheap when not due: every ``heartbeat`` seconds check the folder and refresh the claim."""
        if self.held and time.monotonic() >= self._next_beat:
            self._verify("saving its current epoch")
            self._write()

    def before_save(self, epoch: int) -> None:
        """Confirm that the run is still this session's and that ``last.pt`` is the one it wrote."""
        doing = f"saving epoch {epoch}"
        self._verify(doing)
        now = _signature(self.last)
        if now != self._expected:
            writer, when = self._writer_of_last()
            if writer != self.session:
                raise RunInUse(
                    f"another session wrote into this run while this one trained: {self.last} is now "
                    f"{writer} (modified at {when}), not the checkpoint this session "
                    f"{'wrote' if self.epoch is not None else 'resumed from'}. Two sessions must not "
                    f"train one run, so this one stopped without {doing}; every file in the folder is "
                    "still a whole checkpoint of one session's run. Stop the other session (or let it "
                    "finish), then rerun in one session only: it resumes from the newest checkpoint. "
                    "To train both, give one of them another run name.")
            self._expected = now
        self.epoch = epoch
        self._write()

    def _writer_of_last(self) -> tuple[str, str]:
        """('a checkpoint of session X (epoch k)' or why not, modification time) of ``last.pt``."""
        try:
            mtime = _clock(self.last.stat().st_mtime)
        except OSError:
            return "gone (deleted by someone else)", "?"
        try:
            import torch

            state = torch.load(self.last, map_location="cpu", weights_only=False)
            writer = state.get("writer")
        except Exception:
            return "a file that cannot be read yet (another machine's write still syncing?)", mtime
        if writer == self.session:
            return writer, mtime
        return (f"a checkpoint of session {writer} (epoch {state.get('epoch', '?')})" if writer
                else f"a checkpoint of another session (epoch {state.get('epoch', '?')})"), mtime

    def saved(self) -> None:
        """Record ``last.pt`` as this session wrote it."""
        self._expected = _signature(self.last)

    def release(self) -> None:
        """Delete this session's claim file: the run is free for another session at once."""
        if self in _HELD:
            _HELD.remove(self)
        if not self.held:
            return
        self.held = False
        try:
            info = json.loads(self.path.read_text())
            if info.get("session") == self.session:
                self.path.unlink()
        except (OSError, ValueError):
            pass


class _NoClaim:
    """A training without a checkpoint folder: nothing to claim."""

    session = None

    def check_free(self):
        pass

    def acquire(self):
        return self

    def beat(self):
        pass

    def before_save(self, epoch):
        pass

    def saved(self):
        pass

    def release(self):
        pass


NO_CLAIM = _NoClaim()


def releasing(fn):
    """Release every claim ``fn`` acquired when it returns, fails or is interrupted (a cell
    stopped by hand then frees the run at once instead of after the lapse)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        depth = len(_HELD)
        try:
            return fn(*args, **kwargs)
        finally:
            for claim in _HELD[depth:][::-1]:
                claim.release()
    return wrapper
