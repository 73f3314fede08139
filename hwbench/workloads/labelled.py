"""The labelled reference sets a workload file can name, read and checked before anything runs.

* ``imagefolder``: a folder per class; sorted folder names are labels 0..n-1, or, with a
  class-names file, each folder's label is its line in that file (the model's output order).
  Images are found in each class folder and below it, sorted by path.
* ``list``: a CSV (``path,label`` per row, an optional header) or a JSONL file (``.jsonl``,
  ``{"path": ..., "label": ...}`` per line); paths relative to the list's folder; a label is an
  output index, or a class name when a class-names file is given.
* ``npz``: model inputs and labels as arrays, ``inputs`` (or ``x``) and ``labels`` (or ``y``).

Every problem is a DatasetError naming the file and the fix.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwbench.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")
_INT = re.compile(r"-?\d+")


@dataclass(frozen=True)
class LabelledFiles:
    """Image files and their labels, in a fixed order (the sample indices)."""

    files: tuple[Path, ...]
    labels: np.ndarray  # int64: output indices (after the class offset)
    classes: tuple[str, ...] | None  # class names in label order, when known


def read_class_names(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise DatasetError(f"class-names file {path} not found: give [output] class_names a "
                           "file with one class name per line, in the model's output order")
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    dup = sorted({n for n in names if names.count(n) > 1})
    if not names or dup:
        raise DatasetError(f"{path}: " + (f"class {dup[0]!r} is listed twice" if dup else
                           "holds no class names") + ": list each class once, in output order")
    return names


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file() and not any(part.startswith(".")
                                              for part in p.relative_to(folder).parts))


def read_imagefolder(root: Path, names: tuple[str, ...] | None) -> LabelledFiles:
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} not found: give [dataset] path a folder "
                           "holding one folder of images per class")
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise DatasetError(f"{root} holds no class folders: put each class's images in a "
                           "folder named after the class")
    if names is not None:
        unknown = [d.name for d in folders if d.name not in names]
        if unknown:
            raise DatasetError(f"{root / unknown[0]}: class folder {unknown[0]!r} is not in the "
                               "class-names file: add it there or remove the folder")
    files: list[Path] = []
    labels: list[int] = []
    for i, folder in enumerate(folders):
        found = _images_under(folder)
        if not found:
            raise DatasetError(f"{folder}: class folder holds no images "
                               f"({', '.join(IMAGE_SUFFIXES)}): add its images or remove it")
        files += found
        labels += [names.index(folder.name) if names is not None else i] * len(found)
    classes = names if names is not None else tuple(d.name for d in folders)
    return LabelledFiles(tuple(files), np.array(labels, dtype=np.int64), classes)


def read_list(path: Path, names: tuple[str, ...] | None) -> LabelledFiles:
    if not path.is_file():
        raise DatasetError(f"list file {path} not found: give [dataset] path a CSV or JSONL "
                           "file of image paths and labels")
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    rows = _jsonl_rows(path) if jsonl else _csv_rows(path)
    if not rows:
        raise DatasetError(f"{path} lists no images: add one image and its label per line")
    files, labels = [], []
    for line, (name, label) in rows:
        files.append(path.parent / name)
        labels.append(_label(path, line, label, names))
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) listed in {path} are missing (first: "
                           f"{missing[0]}): restore them or remove their lines")
    return LabelledFiles(tuple(files), np.array(labels, dtype=np.int64), names)


def _csv_rows(path: Path) -> list[tuple[int, tuple[str, object]]]:
    with open(path, newline="") as f:
        table = [(n, r) for n, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    if table and [c.strip().lower() for c in table[0][1]] == ["path", "label"]:
        table = table[1:]
    for n, r in table:
        if len(r) != 2 or not r[0].strip():
            raise DatasetError(f"{path} line {n}: expected 'path,label', found {','.join(r)!r}: "
                               "fix the line")
    return [(n, (r[0].strip(), r[1].strip())) for n, r in table]


def _jsonl_rows(path: Path) -> list[tuple[int, tuple[str, object]]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("path"), str) or "label" not in obj:
            raise DatasetError(f"{path} line {n}: expected {{\"path\": ..., \"label\": ...}}: "
                               "fix the line")
        rows.append((n, (obj["path"], obj["label"])))
    return rows


def _label(path: Path, line: int, label: object, names: tuple[str, ...] | None) -> int:
    if isinstance(label, str) and _INT.fullmatch(label):
        label = int(label)
    if isinstance(label, int) and not isinstance(label, bool):
        if label < 0 or (names is not None and label >= len(names)):
            upto = f" to {len(names) - 1}" if names else ""
            raise DatasetError(f"{path} line {line}: label {label} is not a class index: give "
                               f"an output index from 0{upto}")
        return label
    if isinstance(label, str) and names is not None:
        if label not in names:
            raise DatasetError(f"{path} line {line}: class {label!r} is not in the class-names "
                               "file: add it there or fix the label")
        return names.index(label)
    raise DatasetError(f"{path} line {line}: label {label!r} is not an output index: give an "
                       "integer, or a class name with [output] class_names")


def open_npz(path: Path, writer: str) -> dict[str, np.ndarray]:
    """Every array of an npz file by name, read at once (no pickled objects); a missing or
    unreadable file is a DatasetError naming how to write one (`writer`)."""
    if not path.is_file():
        raise DatasetError(f"npz file {path} not found: write it with {writer}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable npz ({type(exc).__name__}): write it "
                           f"with {writer}") from None


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs float32 (N, ...), labels int64 (N,))`` from an npz file."""
    if not path.is_file():
        raise DatasetError(f"npz file {path} not found: give [dataset] path an .npz holding "
                           "'inputs' and 'labels'")
    z = open_npz(path, "numpy.savez(path, inputs=..., labels=...)")
    x = next((z[k] for k in ("inputs", "x") if k in z), None)
    y = next((z[k] for k in ("labels", "y") if k in z), None)
    if x is None or y is None:
        raise DatasetError(f"{path} lacks {'inputs' if x is None else 'labels'}: name the arrays "
                           "'inputs' (or 'x') and 'labels' (or 'y')")
    if (x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or not len(y)
            or not np.issubdtype(x.dtype, np.number) or not np.issubdtype(y.dtype, np.integer)
            or (y < 0).any()):
        raise DatasetError(f"{path}: inputs {x.dtype}{list(x.shape)} and labels "
                           f"{y.dtype}{list(y.shape)} do not fit: give N inputs and N integer "
                           "labels >= 0")
    return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)
