"""The compiled area resize and crop (numba, the ``fast`` extra) against numpy's: the same pixels
exactly, for every geometry ImageNet and workload files bring, read-only images included; and
both against MLPerf's OpenCV INTER_AREA within one 8-bit level (a differential test: the same
assertions run on each implementation)."""
from __future__ import annotations

import numpy as np
import pytest

from hwbench.workloads import imagenet

pytest.importorskip("numba")  # the 'test' extra installs the 'fast' extra
cv2 = pytest.importorskip("cv2")

# (width, height): ImageNet's common geometries, whole-number and odd scales, enlarging (shorter
# side below 256), tall and wide extremes, and an image exactly the crop.
SIZES = [(500, 375), (375, 500), (333, 500), (500, 333), (512, 512), (1500, 1000), (800, 257),
         (257, 800), (300, 200), (180, 180), (224, 224), (256, 256), (4000, 3000), (640, 427)]


def _image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    return cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 1.5)


@pytest.fixture(params=["numba", "numpy"])
def resize(request):
    if request.param == "numba":
        assert imagenet.ready() == "numba"
        return imagenet.resize_crop
    return imagenet.resize_crop_numpy


def test_the_compiled_kernel_gives_numpys_pixels_exactly():
    assert imagenet.ready() == "numba"
    rng = np.random.default_rng(11)
    for w, h in SIZES:
        rgb = _image(rng, w, h)
        want = imagenet.resize_crop_numpy(rgb)
        np.testing.assert_array_equal(imagenet.resize_crop(rgb), want, err_msg=f"{w}x{h}")
        rgb.flags.writeable = False  # numpy's view of a decoded Pillow image is read-only
        np.testing.assert_array_equal(imagenet.resize_crop(rgb), want, err_msg=f"{w}x{h} ro")
    for side, crop in [(160, 128), (288, 256), (232, 224)]:  # a workload file's geometry
        rgb = _image(rng, 500, 375)
        np.testing.assert_array_equal(imagenet.resize_crop(rgb, side, crop),
                                      imagenet.resize_crop_numpy(rgb, side, crop))


def test_extreme_pixels_round_and_clip_alike():
    """All black, all white and a checkerboard of both: no level escapes 0..255 either way."""
    for fill in (np.zeros, lambda s, dtype: np.full(s, 255, dtype)):
        rgb = fill((375, 500, 3), dtype=np.uint8)
        np.testing.assert_array_equal(imagenet.resize_crop(rgb), imagenet.resize_crop_numpy(rgb))
    board = ((np.indices((375, 500)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=2)
    np.testing.assert_array_equal(imagenet.resize_crop(rgb), imagenet.resize_crop_numpy(rgb))


def test_each_implementation_matches_mlperfs_opencv_within_one_level(resize):
    rng = np.random.default_rng(3)
    for w, h in SIZES:
        rgb = _image(rng, w, h)
        nw, nh = (256, int(256 * h / w)) if h > w else (int(256 * w / h), 256)
        ref = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        top, left = int((nh - 224) / 2), int((nw - 224) / 2)
        ref = ref[top:top + 224, left:left + 224]
        diff = np.abs(resize(rgb).astype(np.int16) - ref)
        assert diff.max() <= 1, (w, h)
