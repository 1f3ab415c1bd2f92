"""Part A: images in and out — files, URLs and scikit-image's bundled photos as (1, 3, 64, 64)
tensors in [-1, 1], the range DeepFloyd IF works in.
"""
from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Photos that scikit-image ships inside its wheel (no download needed). The course's own test
# image is the Berkeley Campanile; a rocket on its launch tower is the closest stand-in.
BUNDLED_PHOTOS = ("rocket", "astronaut", "chelsea", "coffee")
TEST_IMAGE = "rocket"


def pil_to_tensor(img: Image.Image, size: int = 64) -> torch.Tensor:
    """Centre-crop to a square, resize (bicubic, as IF's training data) to size×size, map to [-1, 1]."""
    img = img.convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    array = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
    return array.permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(im: torch.Tensor) -> Image.Image:
    """The first image of a (B, 3, H, W) or a (3, H, W) tensor in [-1, 1], as a PIL image."""
    im = im[0] if im.ndim == 4 else im
    array = ((im.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).numpy())


def _open(source: str | Path) -> Image.Image:
    source = str(source)
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"User-Agent": "diffusion-course"})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return Image.open(io.BytesIO(response.read()))
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise OSError(f"could not download {source} ({err}); check the URL or your connection, "
                          "or download the image and pass its path") from None
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no image at {path}; pass a file path, an http(s) URL or one of "
                                f"skimage's bundled photos {BUNDLED_PHOTOS} via skimage_photo()")
    return Image.open(path)


def load_image(source, size: int = 64) -> torch.Tensor:
    """An image as a (1, 3, size, size) tensor in [-1, 1], from a path, URL, PIL image, HxWx3
    array, or the name of one of scikit-image's bundled photos (``BUNDLED_PHOTOS``)."""
    if isinstance(source, str) and source in BUNDLED_PHOTOS:
        return skimage_photo(source, size)
    if isinstance(source, np.ndarray):
        source = Image.fromarray(source)
    img = source if isinstance(source, Image.Image) else _open(source)
    return pil_to_tensor(img, size)


def skimage_photo(name: str = TEST_IMAGE, size: int = 64) -> torch.Tensor:
    """One of scikit-image's bundled photos (``BUNDLED_PHOTOS``), loaded without a network."""
    import skimage.data

    if name not in BUNDLED_PHOTOS:
        raise ValueError(f"unknown photo {name!r}; these ship with scikit-image: {BUNDLED_PHOTOS}")
    return load_image(getattr(skimage.data, name)(), size)


def web_image(url: str, fallback: str = "astronaut", size: int = 64) -> tuple[torch.Tensor, str]:
    """(image, one line saying where it came from): ``url``, or a bundled photo when offline."""
    try:
        return load_image(url, size), f"web image {url}"
    except OSError as err:
        return skimage_photo(fallback, size), f"{err}; using scikit-image's '{fallback}' instead"


def test_image(size: int = 64) -> torch.Tensor:
    """The course's test image (a stand-in for the Campanile), (1, 3, 64, 64) in [-1, 1]."""
    return skimage_photo(TEST_IMAGE, size)


test_image.__test__ = False  # not a pytest test


def resize(images: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Plain bicubic resize, clamped to [-1, 1]: the offline stand-in for stage II."""
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
