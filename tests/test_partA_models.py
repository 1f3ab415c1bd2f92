"""Part A's surroundings: the tiny IF-shaped model, backends, embeddings, images, hub errors."""
import pytest
import torch

from course_utils.common.profiles import get_profile
from course_utils.part_a import deepfloyd
from course_utils.part_a.backend import load_backend, timesteps_for, tiny_backend
from course_utils.part_a.deepfloyd import (PromptEmbeddings, PseudoEmbeddings, UnknownPromptError,
                                           hub_error_message, pseudo_embedding)
from course_utils.part_a.drawing import drawings, sketches
from course_utils.part_a.images import load_image, resize, skimage_photo, tensor_to_pil, test_image
from course_utils.part_a.noise_models import TINY_UNET_CONFIG, UNetNoiseModel, tiny_if_unet



@pytest.fixture(scope="module")
def unet():
    return tiny_if_unet(seed=0)


def test_tiny_unet_has_if_interface(unet):
    config = unet.config
    assert (config.in_channels, config.out_channels, config.sample_size) == (3, 6, 64)
    assert config.encoder_hid_dim == 4096
    x = torch.randn(2, 3, 64, 64)
    emb = torch.randn(2, 77, 4096)
    with torch.inference_mode():
        out = unet(x, 500, encoder_hidden_states=emb).sample  # diffusers' call signature
    assert out.shape == (2, 6, 64, 64) and out.dtype == torch.float32


def test_tiny_unet_is_seeded(unet):
    other = tiny_if_unet(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(unet.parameters(), other.parameters()))
    assert not torch.equal(next(iter(tiny_if_unet(seed=1).parameters())), next(iter(unet.parameters())))


def test_unet_noise_model_splits_eps_and_variance(unet):
    from course_utils.part_a.schedule import if_scheduler
    model = UNetNoiseModel(unet, if_scheduler(), device="cpu")
    x = torch.randn(3, 3, 64, 64)
    eps, var = model(x, 990, pseudo_embedding("a"))  # one embedding broadcast over the batch
    assert eps.shape == var.shape == (3, 3, 64, 64)
    with torch.inference_mode():
        full = unet(x, 990, encoder_hidden_states=pseudo_embedding("a").expand(3, -1, -1)).sample
    assert torch.equal(eps, full[:, :3]) and torch.equal(var, full[:, 3:])
    with pytest.raises(ValueError, match="x_t"):
        model(torch.randn(3, 64, 64), 990, pseudo_embedding("a"))


def test_tiny_config_follows_if_block_types():
    assert TINY_UNET_CONFIG["mid_block_type"] == "UNetMidBlock2DSimpleCrossAttn"
    assert TINY_UNET_CONFIG["resnet_time_scale_shift"] == "scale_shift"


def test_pseudo_embeddings_are_deterministic_and_if_shaped():
    a, b = pseudo_embedding("a photo of a dog"), pseudo_embedding("a photo of a dog")
    assert a.shape == (1, 77, 4096) and torch.equal(a, b)
    assert not torch.equal(a, pseudo_embedding("a photo of a cat"))
    assert PseudoEmbeddings()["anything at all"].shape == (1, 77, 4096)


def test_unknown_prompt_lists_close_matches(tmp_path):
    table = PromptEmbeddings({"a photo of a dog": torch.zeros(1, 77, 4096),
                              "a photo of a man": torch.zeros(77, 4096), "": torch.zeros(1, 77, 4096)})
    path = table.save(tmp_path / "embeds.pth")
    loaded = PromptEmbeddings.load(path)
    assert loaded["a photo of a man"].shape == (1, 77, 4096)
    with pytest.raises(KeyError) as err:
        loaded["a foto of a dog"]
    assert isinstance(err.value, UnknownPromptError)
    assert "a photo of a dog" in str(err.value) and "compute_prompt_embeddings" in str(err.value)
    with pytest.raises(FileNotFoundError, match="section 0"):
        PromptEmbeddings.load(tmp_path / "missing.pth")


@pytest.mark.parametrize("name", ["GatedRepoError", "RepositoryNotFoundError", "LocalEntryNotFoundError"])
def test_hub_errors_say_what_to_do(name):
    err = type(name, (Exception,), {})("401 Client Error")
    message = hub_error_message(err, deepfloyd.STAGE_1)
    assert "huggingface.co/DeepFloyd/IF-I-XL-v1.0" in message and "HF_TOKEN" in message
    assert "\n" not in message


def test_loading_deepfloyd_offline_fails_with_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(deepfloyd.HubAccessError) as err:
        deepfloyd.load_stage_1("cpu")
    assert "HF_TOKEN" in str(err.value) and "\n" not in str(err.value)


def test_backends(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)  # conftest forces smoke
    forced = load_backend("auto", get_profile("smoke", if_backend="tiny"), device="cpu")
    assert forced.name == "tiny" and "smoke" in forced.reason
    auto = load_backend("auto", get_profile("smoke"), device="cpu")
    assert auto.name == "mnist" and "no CUDA GPU" in auto.describe()
    assert load_backend("tiny", get_profile("cpu"), device="cpu").name == "tiny"
    with pytest.raises(ValueError, match="backend"):
        load_backend("mnist-please", device="cpu")
    assert timesteps_for(get_profile("full"))[:2] == [990, 960]
    assert timesteps_for(get_profile("smoke"))[-1] == 0


def test_tiny_backend_generates_and_upsamples():
    backend = tiny_backend("cpu", block_out_channels=(16, 16, 32))
    images = backend.generate("a rocket ship", num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert images.shape == (1, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert backend.upsample(images, "a rocket ship").shape == (1, 3, 256, 256)
    assert backend.embed("").shape == (1, 77, 4096)


def test_images(tmp_path):
    im = test_image()
    assert im.shape == (1, 3, 64, 64) and im.min() >= -1 and im.max() <= 1
    path = tmp_path / "x.png"
    tensor_to_pil(skimage_photo("chelsea", size=100)).save(path)
    again = load_image(path, size=100)
    assert again.shape == (1, 3, 100, 100)
    assert torch.allclose(again, skimage_photo("chelsea", size=100), atol=1 / 127)
    assert resize(im, 256).shape == (1, 3, 256, 256)
    with pytest.raises(FileNotFoundError, match="URL"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(OSError, match="could not download"):
        load_image("http://127.0.0.1:9/nothing.png")
    with pytest.raises(ValueError, match="scikit-image"):
        skimage_photo("campanile")


def test_headless_drawings():
    pictures = drawings(use_canvas=True)  # not in Colab: the PIL sketches
    assert set(pictures) == set(sketches())
    assert all(p.shape == (1, 3, 64, 64) for p in pictures.values())


def test_auto_falls_back_to_mnist_in_one_line(monkeypatch):
    import course_utils.part_a.backend as backend_module

    def no_access(*args, **kwargs):
        raise deepfloyd.HubAccessError("DeepFloyd/IF-I-XL-v1.0 is gated: accept the licence")

    monkeypatch.setattr(backend_module, "choose_backend", lambda *a, **k: ("deepfloyd", ""))
    monkeypatch.setattr(deepfloyd.hub, "require_gpu", lambda device: None)  # as on a GPU
    monkeypatch.setattr(backend_module, "deepfloyd_backend", no_access)
    fallback = load_backend("auto", device="cpu")
    assert fallback.name == "mnist" and "gated" in fallback.describe() and "\n" not in fallback.describe()
    with pytest.raises(deepfloyd.HubAccessError):
        load_backend("deepfloyd", device="cpu")


def test_choose_backend():
    from course_utils.part_a.backend import choose_backend
    assert choose_backend("auto", None, "cuda") == ("deepfloyd", "")
    assert choose_backend("auto", None, "cpu")[0] == "mnist"
    assert choose_backend("tiny", None, "cuda")[0] == "tiny"
    assert choose_backend("deepfloyd", None, "cpu") == ("deepfloyd", "")


def test_half_precision_unet_returns_float32(unet):
    from course_utils.part_a.schedule import if_scheduler
    model = UNetNoiseModel(tiny_if_unet(seed=0).to(torch.bfloat16), if_scheduler(), device="cpu")
    eps, var = model(torch.randn(1, 3, 64, 64), 500, pseudo_embedding("x"))
    assert model.dtype == torch.bfloat16 and eps.dtype == var.dtype == torch.float32
