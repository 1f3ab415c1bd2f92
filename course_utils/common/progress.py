"""The course's progress bars: tqdm.auto (widgets in a notebook, text elsewhere), silenced by
``TQDM_DISABLE``.

tqdm reads ``TQDM_*`` variables only as defaults, so a call that passes ``disable=`` (every loop
with a ``progress`` flag) would override the environment and draw its bar anyway. Here the
environment always wins over an explicit ``disable=False``: benchmarks, tests and the headless
notebook runner (``tools/run_notebooks.py`` sets ``TQDM_DISABLE=1``) get no bars, while a notebook
run by hand keeps them.
"""
from __future__ import annotations

import os

from tqdm.auto import tqdm as _tqdm

_OFF = ("", "0", "false", "no", "off")


def bars_disabled() -> bool:
    """True when ``TQDM_DISABLE`` is set to anything but "", 0, false, no or off."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in _OFF


def tqdm(*args, disable: bool | None = False, **kwargs):
    """``tqdm.auto.tqdm``, off when ``disable`` is true or ``TQDM_DISABLE`` is set."""
    return _tqdm(*args, disable=True if bars_disabled() else disable, **kwargs)
