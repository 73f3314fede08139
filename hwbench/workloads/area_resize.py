"""The area resize and centre crop of ``imagenet.resize_crop``, compiled with numba.

The same taps and weights (``imagenet._crop_taps``), the same float32 products summed in the same
order, the same rounding: it gives numpy's pixels exactly, without numpy's temporary arrays, and
it releases the GIL (``nogil``), so the harness's preprocessing threads run it side by side.
numba is the ``fast`` extra (``pip install 'hwbench[fast]'``); ``imagenet.resize_crop`` falls
back to numpy when it is not installed (docs/pipeline.md, "Preprocessing").

Compiled when this module is imported (an explicit signature), once per machine thanks to
numba's on-disk cache: ``imagenet.ready()`` imports it before anything is timed.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types


def _signature(readonly: bool):
    image = types.Array(types.uint8, 3, "C", readonly=readonly)
    # the taps are shared between threads, read-only (imagenet._kernel_taps)
    index = types.Array(types.int64, 2, "C", readonly=True)
    weight = types.Array(types.float32, 2, "C", readonly=True)
    return types.void(image, index, weight, index, weight, types.int64,
                      types.Array(types.uint8, 3, "C"))


# Decoded images are often read-only (numpy's view of Pillow's buffer): both kinds are compiled.
@njit([_signature(True), _signature(False)], nogil=True, cache=True)
def resize_crop_into(src, iy, wy, ix, wx, x0, out):  # pragma: no cover - compiled
    """``out[j, i] = round(sum_k wx[k, i] * sum_l wy[l, j] * src[iy[l, j], ix[k, i]])``, rows
    first then columns, each sum in float32 in tap order, as ``imagenet._tap_sum`` does. Each
    tap is added across a whole row at once (a loop the compiler vectorises; the order of the
    sum for every pixel stays the tap order, so the pixels are numpy's exactly)."""
    height, crop_h, crop_w = src.shape[0], iy.shape[1], ix.shape[1]
    width = 0
    for i in range(crop_w):
        for k in range(ix.shape[0]):
            width = max(width, ix[k, i] - x0 + 1)
    flat = src.reshape((height, src.shape[1] * 3))
    n = width * 3
    first = x0 * 3
    row = np.empty(n, np.float32)
    acc = np.empty(crop_w * 3, np.float32)
    half = np.float32(0.5)
    for j in range(crop_h):
        y, w = iy[0, j], wy[0, j]
        for t in range(n):
            row[t] = np.float32(flat[y, first + t]) * w
        for k in range(1, iy.shape[0]):
            y, w = iy[k, j], wy[k, j]
            for t in range(n):
                row[t] += np.float32(flat[y, first + t]) * w
        for i in range(crop_w):
            b, w = (ix[0, i] - x0) * 3, wx[0, i]
            for c in range(3):
                acc[i * 3 + c] = row[b + c] * w
        for k in range(1, ix.shape[0]):
            for i in range(crop_w):
                b, w = (ix[k, i] - x0) * 3, wx[k, i]
                for c in range(3):
                    acc[i * 3 + c] += row[b + c] * w
        for i in range(crop_w):
            for c in range(3):
                v = np.floor(acc[i * 3 + c] + half)
                out[j, i, c] = 0 if v < 0 else 255 if v > 255 else np.uint8(v)
