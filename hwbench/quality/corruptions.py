"""Image corruptions that real cameras produce, five severities each, after ImageNet-C.

Parameters follow Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations" (ICLR 2019), ``make_imagenet_c.py``, whose images are 224 pixels
wide. Photometric parameters (noise, brightness, contrast, JPEG quality) are used as they are.
Spatial ones scale with the image: a length of L pixels at 224 becomes L * side / 224 here, so an
8x8 digit is blurred as much, relative to its size, as a 224x224 photograph. Sub-pixel blur still
acts: a blur kernel is integrated over pixel areas (each point of the continuous point-spread
function is shared bilinearly between the four nearest pixels), so a radius of 0.3 pixels spreads
a little light to the neighbours instead of rounding to nothing.

Every corruption takes float32 images in [0, 1], ``(N, H, W, C)``, and returns the same shape.
Randomness is drawn per (seed, corruption, severity, sample index), so a sample's corruption does
not depend on which other samples are processed with it. Kernels are vectorised numpy: loops run
over kernel taps or samples, never over pixels.
"""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIDE = 224  # ImageNet-C's image size: spatial parameters are given at this size
READ_NOISE = 0.01  # low light: sensor read noise, standard deviation in [0, 1] units
FULL_WELL = 60  # low light: photons per unit intensity at normal exposure (ImageNet-C shot c=60)
FFT_MIN_TAPS = 48  # above this many kernel taps, convolving through the FFT is cheaper
FFT_GROUP = 16  # images transformed at once by the FFT path

Kernel = Callable[[np.ndarray, object, list], np.ndarray]


@dataclass(frozen=True)
class Corruption:
    """One corruption: its kernel, the parameter of each severity and where the values come from."""

    name: str
    params: tuple
    kernel: Kernel
    random: bool
    source: str


def _rngs(seed: int, name: str, severity: int, indices: np.ndarray) -> list[np.random.Generator]:
    key = zlib.crc32(name.encode())  # stable across runs and Python versions, unlike hash()
    return [np.random.default_rng([seed, key, severity, int(i)]) for i in indices]


def _scale(x: np.ndarray) -> float:
    return min(x.shape[1], x.shape[2]) / REFERENCE_SIDE


# --- noise ---------------------------------------------------------------------------------
def gaussian_noise(x: np.ndarray, sigma: float, rngs: list) -> np.ndarray:
    noise = np.stack([r.standard_normal(x.shape[1:], dtype=np.float32) for r in rngs])
    return x + np.float32(sigma) * noise


def shot_noise(x: np.ndarray, photons: float, rngs: list) -> np.ndarray:
    counts = np.stack([r.poisson(xi * photons) for xi, r in zip(x, rngs)])
    return counts / photons


def low_light(x: np.ndarray, stops: float, rngs: list) -> np.ndarray:
    """Under-exposure by `stops` EV: fewer photons reach the sensor, so the image darkens and its
    shot noise grows relative to the signal; the sensor's read noise stays the same."""
    gain = 2.0 ** -stops
    photons = [r.poisson(xi * gain * FULL_WELL) for xi, r in zip(x, rngs)]
    read = [r.standard_normal(x.shape[1:]) for r in rngs]
    return np.stack(photons) / FULL_WELL + READ_NOISE * np.stack(read)


# --- photometric ---------------------------------------------------------------------------
def brightness(x: np.ndarray, shift: float, rngs: list) -> np.ndarray:
    """Over-exposure: ImageNet-C adds `shift` to HSV's V. With hue and saturation unchanged, the
    RGB values scale by V'/V (a black pixel, whose saturation is 0, becomes grey V')."""
    v = x.max(axis=-1, keepdims=True)
    v_new = np.clip(v + shift, 0.0, 1.0)
    ratio = np.divide(v_new, v, out=np.zeros_like(v), where=v > 0)
    return np.where(v > 0, x * ratio, v_new)


def contrast(x: np.ndarray, factor: float, rngs: list) -> np.ndarray:
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * np.float32(factor) + means


# --- blur ----------------------------------------------------------------------------------
def _splat(points: np.ndarray, weights: np.ndarray, half: int) -> np.ndarray:
    """Pixel kernels ``(N, 2*half+1, 2*half+1)`` from weighted PSF points ``(N, P, 2)`` (dy, dx):
    each point's weight is shared bilinearly between its four nearest pixels."""
    n, p = weights.shape
    size = 2 * half + 1
    pos = points + half
    base = np.floor(pos).astype(np.int64)
    frac = pos - base
    k = np.zeros((n, size + 1, size + 1))
    sample = np.repeat(np.arange(n), p)
    for oy in (0, 1):
        wy = frac[..., 0] if oy else 1 - frac[..., 0]
        for ox in (0, 1):
            wx = frac[..., 1] if ox else 1 - frac[..., 1]
            np.add.at(k, (sample, (base[..., 0] + oy).ravel(), (base[..., 1] + ox).ravel()),
                      (weights * wy * wx).ravel())
    k = k[:, :size, :size]
    return k / k.sum(axis=(1, 2), keepdims=True)


@lru_cache(maxsize=64)
def disk_kernel(radius: float) -> np.ndarray:
    """Defocus: a uniform disk of `radius` pixels, integrated over pixel areas."""
    grid = np.linspace(-radius, radius, 65)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    inside = yy ** 2 + xx ** 2 <= radius ** 2 + 1e-12
    pts = np.stack([yy[inside], xx[inside]], axis=-1)[np.newaxis]
    return _splat(pts, np.ones(pts.shape[:2]), int(np.ceil(radius)) + 1)[0]


def motion_kernels(length: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """ImageMagick's motion blur, as ImageNet-C uses it: a one-sided trail of `length` pixels
    along each angle, weighted by a half-Gaussian of `sigma` pixels from the sharp end."""
    t = np.linspace(0.0, length, 129)
    w = np.exp(-t ** 2 / (2 * sigma ** 2))
    a = np.deg2rad(angles_deg)[:, np.newaxis]
    pts = np.stack([-t * np.sin(a), t * np.cos(a)], axis=-1)  # image rows grow downwards
    return _splat(pts, np.broadcast_to(w, (len(a), len(t))), int(np.ceil(length)) + 1)


def convolve(x: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Each image correlated with its kernel (``(N|1, k, k)``, k odd); borders reflect as
    OpenCV's filter2D default (reflect-101). Small kernels: one vectorised multiply-add per
    non-zero tap; large ones (big images): through the FFT, whose cost does not grow with k."""
    half = kernels.shape[-1] // 2
    xp = np.pad(x, ((0, 0), (half, half), (half, half), (0, 0)), mode="reflect")
    taps = np.argwhere(np.abs(kernels).max(axis=0) > 1e-9)
    if len(taps) > FFT_MIN_TAPS:
        return _correlate_fft(xp, kernels, x.shape)
    _, h, w, _ = x.shape
    out = np.zeros_like(x)
    for a, b in taps:
        weight = kernels[:, a, b].astype(np.float32)[:, None, None, None]
        out += weight * xp[:, a:a + h, b:b + w, :]
    return out


def _correlate_fft(xp: np.ndarray, kernels: np.ndarray, shape: tuple) -> np.ndarray:
    """`convolve` for padded images `xp`, via the FFT, a few images at a time (bounds memory)."""
    n, h, w, _ = shape
    k = kernels.shape[-1]
    size = xp.shape[1:3]
    # Convolving with the flipped kernel is correlating with the kernel; the valid part of the
    # circular result starts at k - 1, where no wrap-around reaches.
    kf = np.fft.rfft2(kernels[:, ::-1, ::-1], s=size)[..., np.newaxis]
    out = np.empty(shape, np.float32)
    for i in range(0, n, FFT_GROUP):
        part = slice(i, i + FFT_GROUP)
        xf = np.fft.rfft2(xp[part], axes=(1, 2))
        full = np.fft.irfft2(xf * (kf if len(kf) == 1 else kf[part]), s=size, axes=(1, 2))
        out[part] = full[:, k - 1:k - 1 + h, k - 1:k - 1 + w, :]
    return out


def defocus_blur(x: np.ndarray, radius: float, rngs: list) -> np.ndarray:
    # ImageNet-C also antialiases its discrete disk with a small Gaussian; integrating the disk
    # over pixel areas does that job here.
    return convolve(x, disk_kernel(radius * _scale(x))[np.newaxis])


def motion_blur(x: np.ndarray, param: tuple[float, float], rngs: list) -> np.ndarray:
    radius, sigma = param
    angles = np.array([r.uniform(-45, 45) for r in rngs])
    s = _scale(x)
    return convolve(x, motion_kernels(2 * radius * s, sigma * s, angles))


# --- digital -------------------------------------------------------------------------------
def jpeg_compression(x: np.ndarray, quality: int, rngs: list) -> np.ndarray:
    from PIL import Image

    mode = {1: "L", 3: "RGB"}[x.shape[-1]]
    pixels = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    out = np.empty_like(x)
    for i, img in enumerate(pixels):
        buf = io.BytesIO()
        Image.fromarray(img.squeeze(-1) if mode == "L" else img, mode).save(
            buf, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buf), dtype=np.float32) / 255.0
        out[i] = decoded.reshape(x.shape[1:])
    return out


def _box_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Pillow's BOX resampling (ImageNet-C's pixelate uses it) as an (n_out, n_in) matrix: output
    pixel j averages the input pixels whose centres fall in its box, as Pillow's coefficients."""
    scale = n_in / n_out
    support = 0.5 * max(scale, 1.0)
    centre = (np.arange(n_out)[:, None] + 0.5) * scale
    lo = np.maximum(np.floor(centre - support + 0.5), 0)
    hi = np.minimum(np.floor(centre + support + 0.5), n_in)
    i = np.arange(n_in)[None, :]
    arg = (i - centre + 0.5) / max(scale, 1.0)
    w = ((arg > -0.5) & (arg <= 0.5) & (i >= lo) & (i < hi)).astype(np.float64)
    return w / w.sum(axis=1, keepdims=True)


def pixelate(x: np.ndarray, factor: float, rngs: list) -> np.ndarray:
    _, h, w, _ = x.shape
    sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
    rows = _box_matrix(h, sh) @ _box_matrix(sh, h)
    cols = _box_matrix(w, sw) @ _box_matrix(sw, w)
    return np.einsum("ij,njkc,lk->nilc", rows, x, cols, optimize=True).astype(np.float32)


def occlusion(x: np.ndarray, fraction: float, rngs: list) -> np.ndarray:
    """A black square, `fraction` of the image's side, at a seeded position inside the image."""
    _, h, w, _ = x.shape
    sh, sw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top = np.array([r.integers(0, h - sh + 1) for r in rngs])[:, None]
    left = np.array([r.integers(0, w - sw + 1) for r in rngs])[:, None]
    rows = (np.arange(h) >= top) & (np.arange(h) < top + sh)
    cols = (np.arange(w) >= left) & (np.arange(w) < left + sw)
    mask = rows[:, :, None] & cols[:, None, :]
    return np.where(mask[..., None], np.float32(0), x)


_IMAGENET_C = "ImageNet-C"
CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("gaussian_noise", (0.08, 0.12, 0.18, 0.26, 0.38), gaussian_noise, True, _IMAGENET_C),
    Corruption("shot_noise", (60, 25, 12, 5, 3), shot_noise, True, _IMAGENET_C),
    Corruption("defocus_blur", (3, 4, 6, 8, 10), defocus_blur, False,
               "ImageNet-C disk radii, scaled to the image"),
    Corruption("motion_blur", ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)), motion_blur, True,
               "ImageNet-C (radius, sigma), scaled to the image; angle uniform in [-45, 45]"),
    Corruption("brightness", (0.1, 0.2, 0.3, 0.4, 0.5), brightness, False, _IMAGENET_C),
    Corruption("low_light", (0.5, 1.0, 1.5, 2.0, 3.0), low_light, True,
               "hwbench: under-exposure in EV stops, shot noise at 60 photons, read noise 0.01"),
    Corruption("contrast", (0.4, 0.3, 0.2, 0.1, 0.05), contrast, False, _IMAGENET_C),
    Corruption("jpeg_compression", (25, 18, 15, 10, 7), jpeg_compression, False, _IMAGENET_C),
    Corruption("pixelate", (0.6, 0.5, 0.4, 0.3, 0.25), pixelate, False, _IMAGENET_C),
    Corruption("occlusion", (1 / 8, 2 / 8, 3 / 8, 4 / 8, 5 / 8), occlusion, True,
               "hwbench: black square, side as a fraction of the image's"),
)}


def eight_bit(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as an 8-bit image holds them: each value clipped and rounded to the
    nearest of 256 levels, back in [0, 1] float32. ImageNet-C saves every corrupted image as
    8-bit (its code ends each corruption with ``np.uint8``, which truncates: we round, so that an
    8-bit image comes back unchanged despite float rounding, and no corruption darkens by half a
    level on average)."""
    levels = np.round(np.clip(images, 0.0, 1.0) * np.float32(255.0))
    return np.divide(levels, np.float32(255.0), dtype=np.float32)


def corrupt(images: np.ndarray, name: str, severity: int, seed: int,
            indices: np.ndarray) -> np.ndarray:
    """`images` (N, H, W, C) float32 in [0, 1], sample `indices` (N,) -> corrupted, in [0, 1]."""
    c = CORRUPTIONS[name]
    rngs = _rngs(seed, name, severity, indices) if c.random else []
    out = c.kernel(np.asarray(images, dtype=np.float32), c.params[severity - 1], rngs)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
