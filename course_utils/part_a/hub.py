"""Part A: whether DeepFloyd IF can run here, and if not, the one real reason.

IF needs four things: its Python packages, a CUDA GPU, a Hugging Face token whose account has
accepted the licence, and a network (or the weights in the local cache). Each missing one gets
its own error class and a message that says what to do, so ``BACKEND = "auto"`` can fall back
to MNIST with the true reason instead of always blaming the licence.
"""
from __future__ import annotations

import importlib.util
import os
import socket
from urllib.parse import urlparse

import torch

from ..common.env import in_colab

# import name -> pip name; protobuf: transformers 5 reads T5's SentencePiece model through it
# (without it the tokenizer falls back to tiktoken and fails with a ValueError).
STAGE_PACKAGES = {"diffusers": "diffusers", "transformers": "transformers", "accelerate": "accelerate",
                  "safetensors": "safetensors"}
T5_PACKAGES = {**STAGE_PACKAGES, "sentencepiece": "sentencepiece", "google.protobuf": "protobuf"}
INSTALL_HINT = "pip install \"course-utils[deepfloyd]\" (the notebook's first cell does it in Colab)"


class DeepFloydUnavailable(RuntimeError):
    """IF cannot run here; the message is one line that names the reason and the fix."""


class MissingPackageError(DeepFloydUnavailable):
    pass


class NoGPUError(DeepFloydUnavailable):
    pass


class HubAccessError(DeepFloydUnavailable):
    """DeepFloyd IF could not be loaded from the hub (no token, licence not accepted, offline)."""


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # "google" itself missing when asking for google.protobuf
        return False


def missing_packages(text_encoder: bool = False) -> list[str]:
    """pip names of what IF's stages (or, with ``text_encoder``, T5 and its tokenizer) still need."""
    wanted = T5_PACKAGES if text_encoder else STAGE_PACKAGES
    return [pip for name, pip in wanted.items() if not _installed(name)]


def require_packages(text_encoder: bool = False) -> None:
    missing = missing_packages(text_encoder)
    if missing:
        raise MissingPackageError(f"DeepFloyd IF needs the Python packages {', '.join(missing)}, which "
                                  f"are not installed: {INSTALL_HINT}, then restart the kernel")


def require_gpu(device: torch.device) -> None:
    if device.type != "cuda":
        raise NoGPUError(f"DeepFloyd IF needs a CUDA GPU and this runs on {device.type}: in Colab pick "
                         "Runtime > Change runtime type > T4 GPU; elsewhere use BACKEND = \"mnist\" "
                         "(Part B's model) or \"tiny\"")


def token_source() -> str | None:
    """Where a Hugging Face token would come from ("HF_TOKEN", "login", "Colab secret"), or None."""
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "HF_TOKEN"
    try:
        from huggingface_hub.utils._auth import _get_token_from_file
        if _get_token_from_file():
            return "login"
    except ImportError:
        pass
    secret = _colab_secret()
    return "Colab secret" if secret else None


def _colab_secret() -> str | None:
    try:
        from google.colab import userdata
        return userdata.get("HF_TOKEN")
    except Exception:  # not in Colab, no such secret, or notebook access to it not granted
        return None


def hub_login(interactive: bool = True) -> str:
    """The notebook's token cell: use the Colab secret ``HF_TOKEN`` or a saved login, else ask.

    Returns one line that says where the token came from; the token itself is never printed.
    Only in Colab, and only with ``interactive``, does it show huggingface_hub's login box: a
    headless run (papermill, CI) never waits for one.
    """
    source = token_source()
    if source == "Colab secret":
        os.environ["HF_TOKEN"] = _colab_secret()  # huggingface_hub reads it from here
    if source:
        return f"Hugging Face token: from {source}"
    if interactive and in_colab():
        from huggingface_hub import login
        login()  # in a notebook: a password box that returns at once; the token is stored, not shown
        return ("Hugging Face token: paste a read token in the box above and press Login, then run the "
                "next cell (or add the Colab secret HF_TOKEN and run this cell again)")
    return ("no Hugging Face token: DeepFloyd IF will not load (BACKEND=\"auto\" uses MNIST). Add the "
            "Colab secret HF_TOKEN (key icon, left bar; allow notebook access) or run "
            "huggingface_hub.login(), after accepting the licence on the model pages")


def hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub, no retries: huggingface_hub's own retries on a dead network
    cost ~23 s and print a line per try."""
    if hub_offline():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _error_chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def hub_error_message(err: BaseException, repo: str, token: str | None = "auto") -> str:
    """One line that says why ``repo`` could not be loaded and what to do about it.

    ``token``: where the token came from (``token_source()``); with a token set, "set HF_TOKEN"
    would be wrong advice, so the message says that this token's account lacks access instead.
    """
    token = token_source() if token == "auto" else token
    page = f"https://huggingface.co/{repo}"
    if token:
        fix = (f"the token (from {token}) is there but its account has no access: accept the licence at "
               f"{page} while logged in as that account, or use a read token of an account that did")
    else:
        fix = (f"accept the licence at {page}, then add the Colab secret HF_TOKEN or run "
               "huggingface_hub.login()")
    names = [type(e).__name__ for e in _error_chain(err)]
    text = " ".join(str(e) for e in _error_chain(err)).lower()
    if "GatedRepoError" in names or "gated repo" in text:
        return f"{repo} is gated and this account has no access yet: {fix}"
    if "RepositoryNotFoundError" in names or "401" in text or "403" in text:
        return (f"{repo} is not visible to this token: {fix}" if token else
                f"{repo} needs a Hugging Face token and none is set: {fix}")
    if ("LocalEntryNotFoundError" in names or "OfflineModeIsEnabled" in names or "offline" in text
            or "cached" in text):
        where = "HF_HUB_OFFLINE is set" if hub_offline() else "huggingface.co cannot be reached"
        return (f"{repo} is not in the local cache and {where}: connect to the internet (and check "
                f"access: {fix})")
    if any(n in names for n in ("ConnectionError", "TimeoutError", "ConnectTimeout", "ConnectError")):
        return f"cannot reach the Hugging Face hub for {repo}: check the connection; access: {fix}"
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"could not load {repo} ({names[0]}: {first_line[:160]}); if it is about access: {fix}"


def hub_errors() -> tuple[type, ...]:
    """What a hub download can raise. Not ValueError: that is a bug or a missing package, and
    turning it into "accept the licence" sent people the wrong way."""
    errors: list[type] = [OSError, ConnectionError, TimeoutError]
    try:
        from huggingface_hub import errors as hf_errors
        errors += [getattr(hf_errors, n) for n in ("GatedRepoError", "RepositoryNotFoundError",
                                                   "LocalEntryNotFoundError", "HfHubHTTPError",
                                                   "OfflineModeIsEnabled")
                   if hasattr(hf_errors, n)]
    except ImportError:
        pass
    try:  # huggingface_hub >= 1.0 speaks httpx
        import httpx
        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    try:  # huggingface_hub < 1.0 speaks requests
        import requests
        errors.append(requests.exceptions.RequestException)
    except ImportError:
        pass
    return tuple(errors)
