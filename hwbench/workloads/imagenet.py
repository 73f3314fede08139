"""The ImageNet 2012 validation set in MLPerf's layout, and MLPerf's reference preprocessing.

Layout: one folder with the images and ``val_map.txt``, one ``FILE LABEL`` line per image, labels
0..999 (MLPerf's ``--dataset-path``). Preprocessing follows MLPerf's ``pre_process_vgg``: the
shorter side resized to 256 (224 / 87.5%) with OpenCV's area interpolation, a centre crop of 224,
RGB. Decoded and cropped images are cached once as uint8 (see ``image_cache.py``); the mean subtraction
and the NCHW layout are applied when samples are loaded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwbench.errors import DatasetError
from hwbench.workloads.base import sha256_of

VAL_MAP = "val_map.txt"
NUM_CLASSES = 1000
CROP = 224
SCALE = 87.5  # MLPerf's resize_with_aspectratio: the crop is 87.5% of the resized shorter side
MEANS = np.array([123.68, 116.78, 103.94], dtype=np.float32)  # RGB, on the 0..255 scale
_LINE = re.compile(r"\s+")


@dataclass(frozen=True)
class Listing:
    """The reference set as ``val_map.txt`` lists it, in its order."""

    root: Path
    files: tuple[str, ...]
    labels: np.ndarray  # int64, 0..999
    val_map_sha256: str

    def paths(self) -> list[Path]:
        return [self.root / f for f in self.files]


def read_listing(root: Path) -> Listing:
    """Parses ``root/val_map.txt``; every listed image must exist and every label be 0..999."""
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} not found: give --dataset the folder holding "
                           f"the ImageNet validation images and {VAL_MAP}")
    vmap = root / VAL_MAP
    if not vmap.is_file():
        raise DatasetError(f"{vmap} not found: --dataset needs MLPerf's {VAL_MAP} ('FILE LABEL' "
                           "per line) beside the images (see docs/resnet50.md)")
    files, labels = [], []
    for n, line in enumerate(vmap.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        files.append(_parse_line(vmap, n, line, labels))
    if not files:
        raise DatasetError(f"{vmap} lists no images: use MLPerf's {VAL_MAP}")
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) listed in {vmap} are missing (first: "
                           f"{missing[0]}): restore them or remove their lines")
    return Listing(root, tuple(files), np.array(labels, dtype=np.int64), sha256_of(vmap))


def _parse_line(vmap: Path, n: int, line: str, labels: list[int]) -> str:
    parts = _LINE.split(line.strip())
    if len(parts) != 2 or not re.fullmatch(r"-?\d+", parts[1]):
        raise DatasetError(f"{vmap} line {n}: expected 'FILE LABEL', found {line.strip()!r}: "
                           "fix the line")
    label = int(parts[1])
    if not 0 <= label < NUM_CLASSES:
        raise DatasetError(f"{vmap} line {n}: label {label} is outside 0..{NUM_CLASSES - 1}: "
                           f"use MLPerf's {VAL_MAP} (labels 0..999, no background class)")
    labels.append(label)
    return parts[0]


RESIZE = int(100.0 * CROP / SCALE)  # 256: the shorter side before the crop


def resized_size(width: int, height: int, side: int = RESIZE) -> tuple[int, int]:
    """MLPerf's ``resize_with_aspectratio``: the shorter side becomes `side` (256), the longer
    one is scaled in proportion, truncating."""
    if height > width:
        return side, int(side * height / width)
    return int(side * width / height), side


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of OpenCV's INTER_AREA along one axis: each output pixel is the
    mean of the input it covers, each input pixel weighted by its overlap. This holds for both
    shrinking (OpenCV's resizeArea) and enlarging (its area coefficients fx in cv::resize)."""
    scale = n_in / n_out
    lo = np.arange(n_out, dtype=np.float64)[:, None] * scale
    edges = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.minimum(lo + scale, edges + 1) - np.maximum(lo, edges)
    return (np.clip(overlap, 0.0, None) / scale).astype(np.float32)


@lru_cache(maxsize=512)  # ImageNet has few distinct sizes: most images reuse their taps
def _crop_taps(n_in: int, n_out: int, crop: int = CROP) -> tuple[np.ndarray, np.ndarray]:
    """The area weights of the `crop` centre output pixels as a few taps: ``index[k, j]`` is the
    k-th input pixel that output pixel j reads and ``weight[k, j]`` its weight (0 past the end).
    A fixed sum over taps, rather than a matrix product, gives the same pixels on every machine
    and BLAS build, and starts no BLAS threads beside the decoding threads."""
    start = int((n_out - crop) / 2)  # MLPerf's center_crop: int((size - 224) / 2)
    w = area_weights(n_in, n_out)[start:start + crop]
    nonzero = w > 0
    first = nonzero.argmax(axis=1)
    taps = int(nonzero.sum(axis=1).max())
    index = first[None, :] + np.arange(taps)[:, None]
    inside = index < n_in
    index = np.minimum(index, n_in - 1)
    weight = np.where(inside, w[np.arange(crop)[None, :], index], np.float32(0))
    weight = weight.astype(np.float32)[:, :, None, None]  # over each gathered (W, 3) row
    index.flags.writeable = weight.flags.writeable = False  # shared between threads
    return index, weight


def resize_crop(rgb: np.ndarray, side: int = RESIZE, crop: int = CROP) -> np.ndarray:
    """uint8 ``(H, W, 3)`` -> uint8 ``(crop, crop, 3)``: the shorter side resized to `side`
    (area) and a centre crop, in one pass; only the pixels that survive the crop are computed.
    Halves round up, as OpenCV's integer path for whole-number scales does (its float path
    rounds to nearest: ties there are rare). Compiled with numba where the ``fast`` extra is
    installed (``area_resize``: the same pixels, 2-3x faster, GIL released), else numpy."""
    kernel = _compiled()
    if kernel is None:
        return resize_crop_numpy(rgb, side, crop)
    h, w = rgb.shape[:2]
    out_w, out_h = resized_size(w, h, side)
    iy, wy = _kernel_taps(h, out_h, crop)
    ix, wx = _kernel_taps(w, out_w, crop)
    out = np.empty((crop, crop, 3), dtype=np.uint8)
    kernel(np.ascontiguousarray(rgb, dtype=np.uint8), iy, wy, ix, wx, int(ix.min()), out)
    return out


def resize_crop_numpy(rgb: np.ndarray, side: int = RESIZE, crop: int = CROP) -> np.ndarray:
    """``resize_crop`` in numpy: the taps summed over whole rows at once."""
    h, w = rgb.shape[:2]
    out_w, out_h = resized_size(w, h, side)
    iy, wy = _crop_taps(h, out_h, crop)
    ix, wx = _crop_taps(w, out_w, crop)
    x0, x1 = int(ix.min()), int(ix.max()) + 1
    rows = _tap_sum(rgb[:, x0:x1], iy, wy)  # (224, W', 3): the crop's rows
    cols = _tap_sum(np.ascontiguousarray(rows.transpose(1, 0, 2)), ix - x0, wx)  # transposed
    return np.clip(np.floor(cols.transpose(1, 0, 2) + 0.5), 0, 255).astype(np.uint8)


@lru_cache(maxsize=512)
def _kernel_taps(n_in: int, n_out: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """``_crop_taps`` as the compiled kernel takes them: int64 and float32 ``(taps, crop)``."""
    index, weight = _crop_taps(n_in, n_out, crop)
    index = np.array(index, dtype=np.int64, order="C")
    weight = np.array(weight[:, :, 0, 0], dtype=np.float32, order="C")
    index.flags.writeable = weight.flags.writeable = False  # shared between threads
    return index, weight


_KERNEL: list = []  # [the compiled kernel or None], filled once


def _compiled():
    """The numba kernel, or None when numba is not installed (imported, and so compiled or
    loaded from numba's cache, on the first call)."""
    if not _KERNEL:
        try:
            from hwbench.workloads.area_resize import resize_crop_into
        except ImportError:
            resize_crop_into = None
        _KERNEL.append(resize_crop_into)
    return _KERNEL[0]


def ready() -> str:
    """Readies the resize before anything is timed (the kernel's compilation or cache load);
    says which implementation runs: 'numba' or 'numpy'."""
    return "numpy" if _compiled() is None else "numba"


def _tap_sum(src: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``sum_k weight[k, j] * src[index[k, j]]`` along the first axis, in float32."""
    out = np.multiply(src[index[0]], weight[0], dtype=np.float32)
    term = np.empty_like(out)
    for k in range(1, len(index)):
        np.multiply(src[index[k]], weight[k], out=term)
        out += term
    return out


def decode(path: Path | bytes, fix: str = f"replace the file or remove its line from {VAL_MAP}",
           name: str = "an encoded image") -> np.ndarray:
    """An image file, or its bytes already in memory, as uint8 RGB ``(H, W, 3)``, as OpenCV's
    ``imread`` gives it (EXIF orientation applied; grayscale, palette and CMYK converted to RGB;
    alpha dropped). A file that does not decode is a DatasetError whose message ends with `fix`
    (bytes are named by `name`)."""
    import io

    from PIL import Image, ImageOps

    source = io.BytesIO(path) if isinstance(path, (bytes, bytearray, memoryview)) else path
    what = name if source is not path else path
    try:
        with Image.open(source) as img:
            img = ImageOps.exif_transpose(img)
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{what}: the image will not decode ({type(exc).__name__}: {exc}); "
                           f"{fix}") from None
    return rgb


def load_image(path: Path) -> np.ndarray:
    """One reference image, decoded, resized and cropped: uint8 ``(224, 224, 3)`` RGB."""
    return resize_crop(decode(path))


def to_model_input(images: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``(N, 224, 224, 3)`` images times ``scale`` (to the 0..255 scale) -> MLPerf's input:
    means subtracted, NCHW float32. Channel by channel, so that every write is contiguous."""
    out = np.empty((len(images), 3, *images.shape[1:3]), dtype=np.float32)
    for c in range(3):
        np.multiply(images[..., c], np.float32(scale), out=out[:, c])
        out[:, c] -= MEANS[c]
    return out
