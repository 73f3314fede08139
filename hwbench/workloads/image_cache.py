"""The preprocessed reference images, built once per dataset and preprocessing, then memory-mapped.

One ``.npy`` of uint8 ``(N, 224, 224, 3)`` (150,528 bytes an image; 7.5 GB for ImageNet's 50,000)
under ``cache_dir()/imagenet/``, named by a key over the dataset's identity (resolved folder,
``val_map.txt`` sha256, count and size of every listed file) and the preprocessing version.
Written to a temporary file and renamed, so a crash never leaves a half-written cache behind.
``cached_images`` does the same for any list of files, loader and image shape (workload files
cache under ``cache_dir()/workloads/``, keyed by ``described.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from hwbench.atomic import write_atomically
from hwbench.errors import DatasetError
from hwbench.workloads import imagenet
from hwbench.workloads.base import cache_dir
from hwbench.workloads.imagenet import Listing

# Bumped whenever decoding, resizing or cropping would give other pixels.
PREPROCESSING_VERSION = "mlperf-vgg-area-v1"
SHAPE = (imagenet.CROP, imagenet.CROP, 3)
PARALLEL_FROM = 64  # fewer images are not worth starting threads for
PROGRESS_EVERY_S = 5.0

Progress = Callable[[str], None]


def cache_key(listing: Listing) -> str:
    """Changes whenever the dataset or the preprocessing would give other cached pixels."""
    sizes = [(listing.root / f).stat().st_size for f in listing.files]
    ident = {"root": str(listing.root.resolve()), "val_map_sha256": listing.val_map_sha256,
             "count": len(listing.files), "sizes": sizes, "preprocessing": PREPROCESSING_VERSION}
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]


def cache_path(listing: Listing) -> Path:
    return cache_dir() / "imagenet" / f"{cache_key(listing)}.npy"


def load_or_build(listing: Listing, progress: Progress | None = None,
                  workers: int | None = None) -> np.ndarray:
    """The cropped images of ``listing``, uint8 ``(N, 224, 224, 3)``, memory-mapped read-only."""
    return cached_images(cache_path(listing), listing.paths(), imagenet.load_image, SHAPE,
                         progress, workers)


def cached_images(path: Path, paths: list[Path], load: Callable[[Path], np.ndarray],
                  shape: tuple[int, ...], progress: Progress | None = None,
                  workers: int | None = None) -> np.ndarray:
    """``load`` of every file in `paths` (uint8 images of `shape`), built once into the cache
    file `path` (whose name must change whenever the pixels would) and memory-mapped read-only."""
    cached = _reuse(path, len(paths), shape)
    if cached is not None:
        return cached
    _check_space(path.parent, len(paths), shape)
    _build(paths, load, shape, path, progress, workers or _usable_cores())
    return np.load(path, mmap_mode="r")


def _usable_cores() -> int:
    """Cores this process may run on (a container's share, not the host's), capped at 8 so that
    a large host is not flooded with threads (a cap chosen, not measured)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def _reuse(path: Path, count: int, shape: tuple[int, ...]) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        data = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None  # unreadable: rebuilt below
    return data if data.shape == (count, *shape) and data.dtype == np.uint8 else None


def _check_space(folder: Path, count: int, shape: tuple[int, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    need = count * int(np.prod(shape)) + (1 << 20)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DatasetError(f"the preprocessed images need {need / 1e9:.1f} GB in {folder}, "
                           f"{free / 1e9:.1f} GB are free: free space or set HWBENCH_CACHE")


def _build(paths: list[Path], load: Callable[[Path], np.ndarray], shape: tuple[int, ...],
           path: Path, progress: Progress | None, workers: int) -> None:
    n = len(paths)
    if progress:
        progress(f"preprocessing {n:,} images once into {path} ({workers} thread(s))")

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *shape))
        _fill(out, paths, load, progress, workers)
        out.flush()
        del out

    write_atomically(path, write, suffix=".npy.tmp")


def _fill(out: np.ndarray, paths: list[Path], load: Callable[[Path], np.ndarray],
          progress: Progress | None, workers: int) -> None:
    """Decodes, resizes and crops every image into ``out``. Pillow's decoder and the matrix
    products release the GIL, so threads share the work without copying pixels between
    processes."""
    start = last = time.perf_counter()

    def one(i: int) -> None:
        out[i] = load(paths[i])

    if workers <= 1 or len(paths) < PARALLEL_FROM:
        results = map(one, range(len(paths)))
        for done, _ in enumerate(results, start=1):
            last = _report(progress, done, len(paths), start, last)
        return
    with ThreadPoolExecutor(workers) as pool:
        try:
            for done, _ in enumerate(pool.map(one, range(len(paths))), start=1):
                last = _report(progress, done, len(paths), start, last)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _report(progress: Progress | None, done: int, total: int, start: float, last: float) -> float:
    now = time.perf_counter()
    if progress and (now - last >= PROGRESS_EVERY_S or done == total):
        rate = done / max(now - start, 1e-9)
        progress(f"preprocessed {done:,} / {total:,} images ({rate:,.0f} images/s)")
        return now
    return last
