"""Image decoding, the paper's resize rule and normalisation: numpy and Pillow only (no torch),
so that the runtime's ONNX and TensorRT paths share them with the exporter's verification.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from interactive_trt.common.errors import ImageError
from interactive_trt.contracts.spec import Preprocessing, ResizeRule
from interactive_trt.common.extras import install

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


def bucket_for(height: int, width: int, rule: ResizeRule = ResizeRule()) -> tuple[int, int]:
    """Section 3.1: H*W about target^2, sides multiples of 32 (the rule's), aspect kept, no side under the
    minimum.

    A very elongated image keeps the short side at the minimum and its long side is capped so the
    area stays about target^2; that bounds the set of buckets.
    """
    if height <= 0 or width <= 0:
        raise ImageError(f"image size {height}x{width} is empty")
    area, aspect = float(rule.target_side) ** 2, width / height
    out_h = rule.side(math.sqrt(area / aspect), 0)
    out_w = rule.side(math.sqrt(area * aspect), 1)
    longest = area / rule.min_side
    return min(out_h, rule.side(longest, 0)), min(out_w, rule.side(longest, 1))


def shorter_side_size(height: int, width: int, shorter: int, rule: ResizeRule = ResizeRule()) -> tuple[int, int]:
    """Size for dense evaluation at scale Q: shorter side Q, aspect kept, sides multiples of 32 (the rule's)."""
    scale = shorter / min(height, width)
    return rule.side(height * scale, 0), rule.side(width * scale, 1)


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode any image Pillow reads into HxWx3 uint8 RGB, honouring EXIF rotation.

    Palette, grayscale, 16-bit, CMYK and alpha images are converted (alpha over white); animated
    images give their first frame. Every failure is an ImageError naming the file.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on damaged EXIF: the image is still used
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                # explicit, because warning filters are process-wide and decoding runs on threads
                if Image.MAX_IMAGE_PIXELS and image.width * image.height > Image.MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(
                        f"{image.width}x{image.height} pixels, the limit is {Image.MAX_IMAGE_PIXELS}")
                image.seek(0)
                image = ImageOps.exif_transpose(image)
                return to_rgb(image)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused, larger than the decompression-bomb guard ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from None


def to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        gray = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("empty image")
    return rgb


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if rgb.shape[:2] == (height, width):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))


def normalise(rgb: np.ndarray, preprocessing: Preprocessing = Preprocessing()) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32 as the weights expect (recorded in the manifest)."""
    pixels = rgb.astype(np.float32) * np.float32(preprocessing.scale)
    if preprocessing.channel_order == "BGR":
        pixels = pixels[..., ::-1]
    mean = np.asarray(preprocessing.mean, dtype=np.float32)
    std = np.asarray(preprocessing.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def prepare(rgb: np.ndarray, size: tuple[int, int], preprocessing: Preprocessing, flip: bool = False) -> np.ndarray:
    resized = resize_rgb(rgb, size)
    if flip:
        resized = resized[:, ::-1]
    return normalise(resized, preprocessing)


def sample_photo(name: str = "chelsea") -> np.ndarray:
    """A real photograph shipped with scikit-image (no download), for verification and tests."""
    try:
        import skimage.data
    except ImportError as exc:
        raise ImageError(f"real-photo verification needs scikit-image: {install('export')} "
                         "(or pass --verify-image PHOTO)") from exc
    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
