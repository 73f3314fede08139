"""Corruptions: determinism, independence from the batch, and the intended effect of each one,
on the embedded digits (real 8x8 images) and on 32x32 colour images."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from hwbench.quality.corruptions import (CORRUPTIONS, SEVERITIES, convolve, corrupt, disk_kernel,
                                 motion_kernels, pixelate)
from hwbench.workloads.digits import Digits

NAMES = list(CORRUPTIONS)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(0, 539, 7)
    return Digits().raw_images(idx), idx


def _colour(n: int = 6, side: int = 32) -> np.ndarray:
    """Smooth colour images (gradients and a bright square) with some texture."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = np.stack([yy, xx, 1 - yy * xx], axis=-1)
    out = np.clip(base[None] * rng.uniform(0.3, 0.9, (n, 1, 1, 3))
                  + 0.1 * rng.standard_normal((n, side, side, 3)), 0, 1)
    out[:, 8:16, 8:16, :] = 0.9
    return out.astype(np.float32)


def _hf_energy(x: np.ndarray) -> float:
    """Energy of the discrete Laplacian: what blur removes first."""
    lap = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2]
           - x[:, 1:-1, 2:])
    return float((lap ** 2).mean())


def _block_edges(x: np.ndarray) -> int:
    """Neighbouring pixels that differ: the boundaries between constant blocks."""
    return int((x[:, 1:] != x[:, :-1]).sum() + (x[:, :, 1:] != x[:, :, :-1]).sum())


def _series(x: np.ndarray, idx: np.ndarray, name: str, stat) -> list[float]:
    return [stat(corrupt(x, name, s, 1, idx)) for s in SEVERITIES]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_in_range_and_independent_of_the_batch(digits, name):
    x, idx = digits
    colour = _colour()
    for images, ids in ((x, idx), (colour, np.arange(len(colour)))):
        a = corrupt(images, name, 3, 7, ids)
        assert a.shape == images.shape and a.dtype == np.float32
        assert 0.0 <= a.min() and a.max() <= 1.0
        np.testing.assert_array_equal(a, corrupt(images, name, 3, 7, ids))
        # A sample's corruption depends on its own index, not on its neighbours in the batch.
        np.testing.assert_array_equal(a[2:3], corrupt(images[2:3], name, 3, 7, ids[2:3]))
        assert not np.array_equal(a, images)


@pytest.mark.parametrize("name", [n for n in NAMES if CORRUPTIONS[n].random])
def test_random_corruptions_follow_the_seed(digits, name):
    x, idx = digits
    assert not np.array_equal(corrupt(x, name, 5, 1, idx), corrupt(x, name, 5, 2, idx))


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise"])
def test_noise_raises_variance_with_severity(name):
    grey = np.full((16, 16, 16, 1), 0.5, np.float32)
    var = _series(grey, np.arange(16), name, lambda y: float(y.var()))
    assert var[0] > 1e-4 and all(a < b for a, b in zip(var, var[1:]))


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur"])
def test_blur_lowers_high_frequency_energy(digits, name):
    for images, ids in (digits, (_colour(), np.arange(6))):
        clean = _hf_energy(images)
        hf = _series(images, ids, name, _hf_energy)
        assert hf[0] < clean
        assert all(b <= a * 1.001 for a, b in zip(hf, hf[1:])), hf
        assert hf[-1] < 0.8 * clean


def test_brightness_raises_the_mean_and_keeps_hue_and_saturation(digits):
    x, idx = digits
    means = _series(x, idx, "brightness", lambda y: float(y.mean()))
    assert float(x.mean()) < means[0] and all(a < b for a, b in zip(means, means[1:]))
    colour = _colour(2, 8)
    out = corrupt(colour, "brightness", 2, 1, np.arange(2))
    for p, q in zip(colour.reshape(-1, 3), out.reshape(-1, 3)):  # against the stdlib's HSV
        h, s, v = colorsys.rgb_to_hsv(*p.astype(float))
        expect = colorsys.hsv_to_rgb(h, s, min(v + 0.2, 1.0))
        np.testing.assert_allclose(q, expect, atol=1e-6)


def test_low_light_lowers_the_mean_and_adds_noise(digits):
    x, idx = digits
    means = _series(x, idx, "low_light", lambda y: float(y.mean()))
    assert means[0] < float(x.mean()) and all(a > b for a, b in zip(means, means[1:]))
    black = np.zeros((4, 8, 8, 1), np.float32)
    assert corrupt(black, "low_light", 1, 1, np.arange(4)).max() > 0  # read noise


def test_contrast_lowers_the_spread_and_keeps_the_mean(digits):
    x, idx = digits
    std = _series(x, idx, "contrast", lambda y: float(y.std()))
    assert std[0] < float(x.std()) and all(a > b for a, b in zip(std, std[1:]))
    np.testing.assert_allclose(corrupt(x, "contrast", 3, 1, idx).mean(axis=(1, 2)),
                               x.mean(axis=(1, 2)), atol=1e-6)


def test_jpeg_matches_pillow_at_imagenet_c_quality(digits):
    x, idx = digits
    out = corrupt(x, "jpeg_compression", 5, 1, idx)
    buf = __import__("io").BytesIO()
    Image.fromarray(np.round(x[0, :, :, 0] * 255).astype(np.uint8), "L").save(buf, "JPEG",
                                                                              quality=7)
    np.testing.assert_array_equal(out[0, :, :, 0], np.asarray(Image.open(buf)) / np.float32(255))
    err = _series(x, idx, "jpeg_compression", lambda y: float(np.abs(y - x).mean()))
    assert err[0] > 0 and err[-1] > err[0]


def test_pixelate_matches_pillow_box_and_reduces_distinct_blocks(digits):
    rng = np.random.default_rng(2)
    for side, factor in ((8, 0.6), (8, 0.4), (32, 0.3), (37, 0.6)):
        x = rng.random((1, side, side, 1)).astype(np.float32)
        small = round(side * factor)
        im = Image.fromarray(x[0, :, :, 0], "F").resize((small, small), Image.BOX)
        expect = np.asarray(im.resize((side, side), Image.BOX))
        np.testing.assert_allclose(pixelate(x, factor, [])[0, :, :, 0], expect, atol=1e-6)
    colour = _colour()
    distinct = _series(colour, np.arange(6), "pixelate", lambda y: len(np.unique(y[0])))
    assert distinct[0] < len(np.unique(colour[0]))
    assert all(b < a for a, b in zip(distinct, distinct[1:]))
    x, idx = digits
    edges = _series(x, idx, "pixelate", _block_edges)
    assert edges[0] < _block_edges(x) and all(b <= a for a, b in zip(edges, edges[1:]))
    blocks = corrupt(x, "pixelate", 4, 1, idx)  # 8 -> 2 -> 8: constant 4x4 blocks
    np.testing.assert_allclose(blocks[:, :4, :4], blocks[:, :1, :1].repeat(4, 1).repeat(4, 2))


def test_occlusion_zeros_a_square_growing_with_severity():
    white = np.ones((20, 8, 8, 1), np.float32)
    zeros = _series(white, np.arange(20), "occlusion", lambda y: (y == 0).sum(axis=(1, 2, 3)))
    for s, z in zip(SEVERITIES, zeros):
        assert np.all(z == s * s)  # sides 1/8 .. 5/8 of 8 pixels
    out = corrupt(white, "occlusion", 3, 1, np.arange(20))
    rows, cols = np.nonzero(out[0, :, :, 0] == 0)
    assert rows.max() - rows.min() == cols.max() - cols.min() == 2  # one 3x3 square
    starts = {tuple(np.argwhere(o[:, :, 0] == 0).min(axis=0)) for o in out}
    assert len(starts) > 3  # positions vary by sample


def test_blur_kernels_integrate_the_point_spread_function():
    for r in (0.1, 0.36, 3.0, 10.0):
        k = disk_kernel(r)
        assert k.sum() == pytest.approx(1.0) and np.allclose(k, k.T) and np.allclose(k, k[::-1])
    np.testing.assert_allclose(disk_kernel(0.0)[1:-1, 1:-1], [[1.0]])
    big = disk_kernel(10.0)
    assert (big > 1e-3).sum() == pytest.approx(np.pi * 100, rel=0.1)  # about the disk's area
    m = motion_kernels(6.0, 4.0, np.array([0.0, 90.0]))
    half = m.shape[-1] // 2
    assert m[0, half, half:].sum() == pytest.approx(1.0)  # horizontal trail, one-sided
    assert m[1, :half + 1, half].sum() == pytest.approx(1.0)  # vertical trail


@pytest.mark.parametrize("size", [3, 9])  # 9 taps by taps, 81 through the FFT
@pytest.mark.parametrize("per_sample", [False, True])
def test_convolve_matches_a_direct_sum(size, per_sample):
    rng = np.random.default_rng(4)
    x = rng.random((20, 11, 12, 2)).astype(np.float32)
    k = rng.random((20 if per_sample else 1, size, size))
    out = convolve(x, k)
    half = size // 2
    pad = np.pad(x, ((0, 0), (half, half), (half, half), (0, 0)), mode="reflect")
    for n in (0, 17):
        kn = k[n if per_sample else 0][:, :, None]
        for i in range(11):
            for j in range(12):
                expect = (kn * pad[n, i:i + size, j:j + size]).sum(axis=(0, 1))
                np.testing.assert_allclose(out[n, i, j], expect, rtol=1e-5)


def test_corrupted_images_are_8_bit_and_brightness_matches_imagenet_c():
    """ImageNet-C's brightness (make_imagenet_c.py): x / 255 to HSV, V + c clipped to [0, 1],
    back to RGB, x 255, saved as 8-bit. The robustness pass gives the model the same 8-bit image
    (rounded where ImageNet-C's np.uint8 truncates; see corruptions.eight_bit)."""
    import colorsys

    from hwbench.quality.corruptions import CORRUPTIONS, eight_bit
    from hwbench.quality.robustness import corrupted

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (2, 6, 7, 3))
    raw = (pixels / 255.0).astype(np.float32)
    assert np.array_equal(eight_bit(raw), raw)  # an 8-bit image comes back unchanged
    for severity in (1, 3, 5):
        c = CORRUPTIONS["brightness"].params[severity - 1]
        ours = corrupted(raw, "brightness", severity, seed=1, indices=np.arange(2)) * 255.0
        assert np.array_equal(ours, np.round(ours))  # 256 levels, nothing between
        ref = np.empty(pixels.shape)
        for idx in np.ndindex(pixels.shape[:3]):
            h, s, v = colorsys.rgb_to_hsv(*(pixels[idx] / 255.0))
            ref[idx] = colorsys.hsv_to_rgb(h, s, min(max(v + c, 0.0), 1.0))
        ref = np.clip(ref, 0, 1) * 255
        # V + c lands the brightest channel on a half level (c x 255 = 25.5, 51, ...): there
        # float32 and float64 may round either way; everywhere else the levels are the same.
        tie = np.abs(ref - np.floor(ref) - 0.5) < 1e-3
        assert np.array_equal(ours[~tie], np.round(ref[~tie]))
        assert np.abs(ours[tie] - ref[tie]).max() <= 0.5 + 1e-3
