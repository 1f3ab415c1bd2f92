"""Why DeepFloyd IF cannot run, said once and truly: a missing package, no GPU, no access, no
network, or a broken embeddings file; each with the fix, never the licence for all of them."""
import time
import weakref

import pytest
import torch

from course_utils.part_a import backend, deepfloyd, hub
from course_utils.part_a.deepfloyd import BadEmbeddingsError, PromptEmbeddings


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))   # no saved login either
    monkeypatch.setattr(hub, "_colab_secret", lambda: None)


@pytest.fixture(scope="module")
def tiny_stage_1(tmp_path_factory):
    from tiny_if_hub import build_stage_1

    return str(build_stage_1(tmp_path_factory.mktemp("if") / "IF-I"))


def _missing(monkeypatch, *names):
    real = hub._installed
    monkeypatch.setattr(hub, "_installed", lambda name: name not in names and real(name))


# ---- embeddings files (issue 12, item 7)

def test_zero_byte_embeddings_file_is_named_with_the_fix(tmp_path):
    path = tmp_path / "prompt_embeds_dict.pth"
    path.write_bytes(b"")
    with pytest.raises(BadEmbeddingsError, match=r"empty \(0 bytes.*section 0"):
        PromptEmbeddings.load(path)
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(BadEmbeddingsError, match="not a readable embeddings file.*section 0"):
        PromptEmbeddings.load(path)


@pytest.mark.parametrize("table, what", [
    ({"a dog": torch.zeros(1, 77, 1024)}, r"\(1, 77, 1024\).*needs T5-XXL states of shape \(1, 77, 4096\)"),
    ({"a dog": torch.zeros(77, 4096, dtype=torch.long)}, "int64"),
    ({"a dog": [0.0] * 4}, "must map prompt text to tensors"),
    ([torch.zeros(1, 77, 4096)], "holds a list"),
])
def test_embeddings_of_the_wrong_shape_are_refused_on_load(tmp_path, table, what):
    path = tmp_path / "e.pth"
    torch.save(table, path)
    with pytest.raises(BadEmbeddingsError, match=what):
        PromptEmbeddings.load(path)


def test_prepare_embeddings_and_the_backend_stop_at_a_bad_file(tmp_path, monkeypatch):
    path = tmp_path / "e.pth"
    torch.save({"": torch.zeros(1, 77, 1024)}, path)
    with pytest.raises(BadEmbeddingsError, match="4096"):
        backend.prepare_embeddings([""], "deepfloyd", device="cpu", path=path)
    path.write_bytes(b"")
    monkeypatch.setattr(deepfloyd, "load_stage_1", lambda *a: pytest.fail("loaded IF before reading the file"))
    with pytest.raises(BadEmbeddingsError, match="empty"):
        backend.deepfloyd_backend("cpu", path)


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = PromptEmbeddings({"": torch.zeros(1, 77, 4096)}).save(tmp_path / "e.pth")
    def full_disk(obj, f):
        open(f, "wb").write(b"x")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        PromptEmbeddings({"a": torch.ones(1, 77, 4096)}).save(path)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == [path] and PromptEmbeddings.load(path).prompts() == [""]


# ---- no GPU, missing packages (issue 13 item 1, issue 12 item 8)

def test_deepfloyd_without_cuda_says_it_needs_a_gpu():
    with pytest.raises(deepfloyd.NoGPUError, match="needs a CUDA GPU.*T4"):
        backend.load_backend("deepfloyd", device="cpu")
    with pytest.raises(deepfloyd.NoGPUError, match="needs a CUDA GPU"):
        backend.prepare_embeddings(["a photo of a dog"], "deepfloyd", device="cpu", path="/nonexistent/e.pth")


def test_missing_packages_are_named_not_blamed_on_the_licence(monkeypatch):
    _missing(monkeypatch, "google.protobuf")
    assert hub.missing_packages() == [] and hub.missing_packages(text_encoder=True) == ["protobuf"]
    with pytest.raises(deepfloyd.MissingPackageError) as err:
        deepfloyd.compute_prompt_embeddings(["a dog"], "/nonexistent/e.pth", "cpu")
    assert "protobuf" in str(err.value) and "pip install" in str(err.value) and "licen" not in str(err.value)
    _missing(monkeypatch, "diffusers")
    name, reason = backend.choose_backend("auto", None, "cuda")
    assert name == "mnist" and "diffusers" in reason and "pip install" in reason and "licen" not in reason


def test_auto_falls_back_with_the_real_reason(monkeypatch):
    monkeypatch.setattr(backend, "choose_backend", lambda *a, **k: ("deepfloyd", ""))
    assert "needs a CUDA GPU" in backend.load_backend("auto", device="cpu").reason
    monkeypatch.setattr(hub, "require_gpu", lambda device: None)
    _missing(monkeypatch, "accelerate")
    reason = backend.load_backend("auto", device="cpu").reason
    assert "accelerate" in reason and "licen" not in reason


# ---- tokens and the hub (issue 12 item 8)

def test_with_a_token_set_the_advice_is_not_to_set_one(monkeypatch, no_token):
    gated = type("GatedRepoError", (Exception,), {})("403 Client Error")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    message = hub.hub_error_message(gated, deepfloyd.STAGE_1)
    assert "from HF_TOKEN" in message and "no access" in message
    assert "add the Colab secret" not in message and "hf_secret_value_123" not in message
    monkeypatch.delenv("HF_TOKEN")
    message = hub.hub_error_message(gated, deepfloyd.STAGE_1)
    assert "add the Colab secret HF_TOKEN" in message and "huggingface.co/DeepFloyd/IF-I-XL-v1.0" in message
    unauthorized = type("RepositoryNotFoundError", (Exception,), {})("401 Client Error")
    assert "none is set" in hub.hub_error_message(unauthorized, deepfloyd.STAGE_1)


def test_hub_login_never_prints_the_token_and_never_prompts_headless(monkeypatch, no_token):
    assert "no Hugging Face token" in hub.hub_login(interactive=False)
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "login", lambda *a, **k: pytest.fail("prompted outside Colab"))
    assert "no Hugging Face token" in hub.hub_login(interactive=True)   # papermill, CI: no box
    monkeypatch.setattr(hub, "_colab_secret", lambda: "hf_from_colab_456")
    line = hub.hub_login(interactive=False)
    assert line == "Hugging Face token: from Colab secret" and "hf_from_colab_456" not in line
    import os
    assert os.environ["HF_TOKEN"] == "hf_from_colab_456"   # where huggingface_hub looks for it


def test_unreachable_hub_fails_at_once_without_retries(monkeypatch, no_token, capfd):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # nothing listens: a dead network
    start = time.time()
    with pytest.raises(deepfloyd.HubAccessError) as err:
        deepfloyd.load_stage_1("cpu")
    assert time.time() - start < 10
    assert "cannot be reached" in str(err.value) and "\n" not in str(err.value)
    out = capfd.readouterr()
    assert "retry" not in (out.out + out.err).lower()


# ---- the real loading code on a tiny hub-shaped folder

def test_stages_load_without_tokenizer_even_without_protobuf(monkeypatch, tiny_stage_1):
    _missing(monkeypatch, "google.protobuf", "sentencepiece")
    pipe = deepfloyd.load_stage_1("cpu", tiny_stage_1)
    assert pipe.tokenizer is None and pipe.text_encoder is None and pipe.unet is not None


def test_t5_is_freed_after_the_embeddings(monkeypatch, tiny_stage_1, tmp_path):
    from transformers import T5EncoderModel

    loaded = []
    real = T5EncoderModel.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        model = real(cls, *args, **kwargs)
        loaded.append(weakref.ref(model))
        return model

    monkeypatch.setattr(T5EncoderModel, "from_pretrained", classmethod(spy))
    table = deepfloyd.compute_prompt_embeddings(["", "a photo of a dog"], tmp_path / "e.pth", "cpu", repo=tiny_stage_1)
    assert len(loaded) == 1 and loaded[0]() is None, "T5 is still alive after compute_prompt_embeddings"
    assert table["a photo of a dog"].shape == (1, 77, 4096)


def test_dtype_keyword_follows_the_library_version(monkeypatch, tiny_stage_1):
    import warnings

    from diffusers import IFPipeline
    from diffusers.utils import deprecation_utils

    assert deepfloyd.dtype_kwarg("diffusers", torch.float16) == {"dtype": torch.float16}      # 0.42
    assert deepfloyd.dtype_kwarg("transformers", torch.float16) == {"dtype": torch.float16}   # 5.x
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # diffusers' "torch_dtype is deprecated" would raise here
        IFPipeline.from_pretrained(tiny_stage_1, **deepfloyd.stage_load_kwargs(torch.device("cpu")),
                                   **deepfloyd.dtype_kwarg("diffusers", torch.float32))
    monkeypatch.delattr(deprecation_utils, "_resolve_dtype")          # a diffusers before the rename
    monkeypatch.setattr(deepfloyd, "_version", lambda package: (4, 45))
    assert deepfloyd.dtype_kwarg("diffusers", torch.float16) == {"torch_dtype": torch.float16}
    assert deepfloyd.dtype_kwarg("transformers", torch.float16) == {"torch_dtype": torch.float16}
