"""MNIST loading (handout §1.2.1: torchvision MNIST, train split, shuffled), the synthetic
stand-in used offline, and the run profiles."""
import dataclasses

import pytest
import torch

from course_utils.common.data import average_image, iterate_batches, load_mnist, make_fake_mnist
from course_utils.common.profiles import get_profile


# ---- load_mnist / make_fake_mnist ------------------------------------------------------------

def test_missing_mnist_without_download_says_what_to_do(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(root, download=False)
    msg = str(err.value)
    assert str(root.resolve()) in msg
    assert "download=True" in msg and "COURSE_DATA_ROOT" in msg


def test_fake_mnist_round_trip(tmp_path):
    root = make_fake_mnist(tmp_path / "d", num_train=60, num_test=20, seed=3)
    x, y = load_mnist(root, train=True, download=False)
    xt, yt = load_mnist(root, train=False, download=False)
    assert x.shape == (60, 1, 28, 28) and y.shape == (60,)
    assert xt.shape == (20, 1, 28, 28) and yt.shape == (20,)
    for imgs, labels, per_class in ((x, y, 6), (xt, yt, 2)):
        assert imgs.dtype == torch.float32
        assert imgs.min() >= 0 and imgs.max() <= 1
        assert imgs.max() > 0.9                          # strokes reach (near) white
        assert not torch.is_floating_point(labels)
        assert labels.min() >= 0 and labels.max() <= 9
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10   # balanced
        assert (imgs.flatten(1).amax(1) > 0.5).all()     # no blank image
    # uint8 pixels divided by 255: every value is a multiple of 1/255
    assert torch.allclose(x * 255, (x * 255).round(), atol=1e-4)
    # the ten classes look different: class-mean images are pairwise distinct
    means = torch.stack([x[y == k].mean(0).flatten() for k in range(10)])
    d = torch.cdist(means, means) + torch.eye(10) * 1e9
    assert d.min() > 1.0


def test_fake_mnist_is_reproducible(tmp_path):
    a = load_mnist(make_fake_mnist(tmp_path / "a", 20, 10, seed=1), download=False)
    b = load_mnist(make_fake_mnist(tmp_path / "b", 20, 10, seed=1), download=False)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_default_root_is_course_data_root():
    """conftest.py points COURSE_DATA_ROOT at a synthetic MNIST of 256 / 64 images."""
    x, y = load_mnist(download=False)
    assert x.shape == (256, 1, 28, 28) and y.shape == (256,)
    assert load_mnist(train=False, download=False)[0].shape == (64, 1, 28, 28)


def test_iterate_batches_is_a_shuffled_partition():
    g = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(10, 4, g))
    assert [len(b) for b in batches] == [4, 4, 2]
    order = torch.cat(batches)
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    capped = list(iterate_batches(10, 4, torch.Generator().manual_seed(0), limit=6))
    assert [len(b) for b in capped] == [4, 2] and len(set(torch.cat(capped).tolist())) == 6


def test_average_image_hand_computed():
    imgs = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28), torch.full((1, 28, 28), 0.5)])
    avg = average_image(imgs)
    assert avg.shape == (1, 1, 28, 28)
    torch.testing.assert_close(avg, torch.full((1, 1, 28, 28), 0.5))


# ---- profiles ----------------------------------------------------------------------------

def test_course_profile_env_overrides_the_name(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert get_profile("full").name == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert get_profile("smoke").name == "cpu"
    monkeypatch.delenv("COURSE_PROFILE")
    assert get_profile("full").name == "full"


def test_unknown_profile_raises(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    with pytest.raises(ValueError, match="nope"):
        get_profile("nope")
    monkeypatch.setenv("COURSE_PROFILE", "typo")
    with pytest.raises(ValueError, match="typo"):
        get_profile("full")


def test_auto_profile_follows_the_device(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    expected = "full" if torch.cuda.is_available() else "cpu"
    assert get_profile().name == expected
    assert get_profile("auto").name == expected


def test_full_profile_has_the_handouts_hyperparameters(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    p = get_profile("full")
    # §1.2.1: D = 128, batch 256, Adam 1e-4, 5 epochs; §2.2: D = 64, batch 64, Adam 1e-2
    assert (p.denoiser_D, p.denoiser_batch, p.denoiser_lr, p.denoiser_epochs) == (128, 256, 1e-4, 5)
    assert (p.flow_D, p.flow_batch, p.flow_lr) == (64, 64, 1e-2)
    assert p.flow_epochs >= 10                 # samples after epochs 1, 5, 10 are deliverables
    assert {1, 5, 10} <= set(p.keep_epochs)
    assert p.images_per_epoch is None          # the whole training split


def test_overrides_and_immutability(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    base = get_profile()
    p = get_profile(flow_epochs=base.flow_epochs + 1)
    assert p.name == "smoke" and p.flow_epochs == base.flow_epochs + 1
    assert get_profile().flow_epochs == base.flow_epochs       # the override did not leak
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.flow_D = 3


def test_labels_belong_to_their_images():
    """1-nearest-neighbour from train to test recovers the test labels far above chance (10%):
    images and labels were written (and read back) in the same order."""
    x, y = load_mnist(download=False)
    xt, yt = load_mnist(train=False, download=False)
    pred = y[torch.cdist(xt.flatten(1), x.flatten(1)).argmin(1)]
    assert (pred == yt).float().mean() > 0.5


def test_failed_download_is_not_reported_as_download_disabled(tmp_path, monkeypatch):
    import course_utils.common.data as data

    class OfflineMNIST:
        """What torchvision.datasets.MNIST does offline with download=True (mnist.py download())."""

        def __init__(self, root, train=True, download=False):
            if download:
                raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried "
                                   "https://ossci-datasets.s3.amazonaws.com/mnist/, got:\n"
                                   "<urlopen error [Errno -2] Name or service not known>\n")
            raise RuntimeError("Dataset not found. You can use download=True to download it")

    monkeypatch.setattr(data.datasets, "MNIST", OfflineMNIST)
    with pytest.raises(Exception) as err:
        load_mnist(tmp_path / "empty", download=True)
    msg = str(err.value)
    assert "download is disabled" not in msg and "Pass download=True" not in msg
    assert "COURSE_DATA_ROOT" in msg


def test_fake_mnist_works_with_pillow_before_10_1(tmp_path, monkeypatch):
    from PIL import ImageFont
    real = ImageFont.load_default

    def load_default_pillow_9():          # Pillow 9.x / 10.0 signature: no size argument
        return real()

    monkeypatch.setattr(ImageFont, "load_default", load_default_pillow_9)
    x, y = load_mnist(make_fake_mnist(tmp_path / "d", 10, 10), download=False)
    assert x.shape == (10, 1, 28, 28)
