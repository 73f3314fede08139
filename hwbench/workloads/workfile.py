"""A workload file: a labelled image classifier described in TOML, without code.

``hwbench run --workload FILE.toml`` reads the file here into one frozen ``WorkloadSpec``; every
key is checked at this edge, and a bad one is a UsageError naming the file, the key and the fix
(exit 2, before anything runs). Relative paths are relative to the file. README, "Your own
workload", documents every key; ``described.py`` is the workload built from the spec.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwbench.artifacts import sha256_of
from hwbench.errors import UsageError

LAYOUTS = ("imagefolder", "list", "npz")
COLORS = ("RGB", "BGR")
INTERPOLATIONS = ("area", "bilinear", "bicubic", "nearest")
TENSOR_LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32",)  # what the harness feeds every backend today
KINDS = ("logits", "probabilities")
METRICS = ("top1", "top5")
DEFAULT_LATENCY_BOUND_MS = 15.0  # MLPerf's Server bound for ResNet50, for lack of the model's
DEFAULT_TARGET_RATIO = 0.99  # as MLPerf: 99% of the reference accuracy
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SECTIONS = {
    "": ("name", "model", "description", "latency_bound_ms"),
    "dataset": ("path", "layout"),
    "preprocess": ("color", "resize_shorter", "interpolation", "center_crop", "mean", "std",
                   "scale", "layout", "dtype"),
    "output": ("kind", "class_offset", "name", "class_names"),
    "accuracy": ("reference", "target_ratio", "metric"),
}


@dataclass(frozen=True)
class DatasetSpec:
    path: Path
    layout: str


@dataclass(frozen=True)
class PreprocessSpec:
    color: str = "RGB"
    resize_shorter: int | None = None
    interpolation: str = "area"
    center_crop: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float | None = None
    layout: str = "NCHW"
    dtype: str = "float32"


@dataclass(frozen=True)
class OutputSpec:
    kind: str = "logits"
    class_offset: int = 0
    name: str | None = None
    class_names: Path | None = None


@dataclass(frozen=True)
class AccuracySpec:
    reference: float | None = None
    target_ratio: float = DEFAULT_TARGET_RATIO
    metric: str = "top1"


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload file, parsed and checked; paths resolved against the file's folder."""

    file: Path
    sha256: str
    name: str
    model: Path
    description: str | None
    latency_bound_ms: float
    dataset: DatasetSpec
    preprocess: PreprocessSpec | None  # None for an npz of model inputs
    output: OutputSpec
    accuracy: AccuracySpec

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


class _Table:
    """One table of the file, read key by key; each error names the file, table and key."""

    def __init__(self, file: Path, section: str, data: Any) -> None:
        self.file, self.section = file, section
        where = f"[{section}]" if section else "the top level"
        if not isinstance(data, dict):
            self.fail(f"{where} must be a table", f"write it as [{section}] with keys under it")
        unknown = sorted(set(data) - set(_SECTIONS[section]))
        if unknown:
            self.fail(f"unknown key {unknown[0]!r} in {where}",
                      f"use one of {', '.join(_SECTIONS[section])}")
        self.data = data

    def fail(self, what: str, fix: str) -> None:
        raise UsageError(f"{self.file}: {what}: {fix}")

    def key(self, name: str) -> str:
        return f"[{self.section}] {name}" if self.section else name

    def required(self, name: str, example: str) -> Any:
        if name not in self.data:
            where = f"[{self.section}]" if self.section else "the file"
            self.fail(f"{where} has no {name!r}", f"add {name} = {example}")
        return self.data[name]

    def required_table(self, data: dict, name: str) -> Any:
        if name not in data:
            self.fail(f"the file has no [{name}] table", f"add [{name}] with its keys (README, "
                      "'Your own workload')")
        return data[name]

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = (),
               example: str = '"..."', required: bool = False) -> str | None:
        value = self.required(name, example) if required else self.data.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(f"{self.key(name)} must be a string, not {value!r}", f"write {name} = "
                      f"{example}")
        if choices and value not in choices:
            self.fail(f"{self.key(name)} = {value!r} is not known", f"use one of "
                      f"{', '.join(choices)}")
        return value

    def number(self, name: str, default: float | None = None, integer: bool = False,
               low: float = 0.0, high: float | None = None, low_open: bool = True
               ) -> float | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        ok = isinstance(value, kinds) and not isinstance(value, bool)
        if ok:
            ok = (value > low if low_open else value >= low) and (high is None or value <= high)
        if not ok:
            bound = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high else "")
            self.fail(f"{self.key(name)} = {value!r} is not valid",
                      f"give {'an integer' if integer else 'a number'} {bound}")
        return value

    def path(self, name: str, required: bool = False, example: str = '"FILE"') -> Path | None:
        value = self.string(name, required=required, example=example)
        return None if value is None else (self.file.parent / value).resolve()

    def triple(self, name: str) -> tuple[float, ...] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value] * 3
        if (not isinstance(value, list) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            self.fail(f"{self.key(name)} = {value!r} is not valid", "give one number or three "
                      "(one per channel, in the order of color)")
        return tuple(float(v) for v in value)


def load(file: Path) -> WorkloadSpec:
    """Reads and checks a workload file. Every problem is a one-line UsageError."""
    if not file.is_file():
        raise UsageError(f"workload file {file} not found: give --workload an existing .toml "
                         "file, or a built-in workload (see 'hwbench list')")
    try:
        data = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: not valid TOML ({exc}): fix the syntax") from None
    file = file.resolve()
    top = _Table(file, "", {k: v for k, v in data.items() if not isinstance(v, dict)})
    for section in data:
        if isinstance(data[section], dict) and section not in _SECTIONS:
            top.fail(f"unknown table [{section}]",
                     f"use {', '.join(f'[{s}]' for s in _SECTIONS if s)}")
    name = top.string("name", required=True, example='"my-classifier"')
    if not _NAME.fullmatch(name):
        top.fail(f"name = {name!r} is not valid", "use letters, digits, '.', '_' and '-' "
                 "(it names the run directories), at most 64")
    dataset = _dataset(_Table(file, "dataset", top.required_table(data, "dataset")))
    pre = data.get("preprocess")
    if dataset.layout == "npz":
        if pre is not None:
            top.fail("[preprocess] does not apply to layout = \"npz\", whose inputs are "
                     "model inputs already", "drop [preprocess]")
        preprocess = None
    else:
        preprocess = _preprocess(_Table(file, "preprocess", data.get("preprocess", {})))
    return WorkloadSpec(
        file=file, sha256=sha256_of(file), name=name,
        model=top.path("model", required=True, example='"model.onnx"'),
        description=top.string("description"),
        latency_bound_ms=top.number("latency_bound_ms", DEFAULT_LATENCY_BOUND_MS),
        dataset=dataset, preprocess=preprocess,
        output=_output(_Table(file, "output", data.get("output", {}))),
        accuracy=_accuracy(_Table(file, "accuracy", data.get("accuracy", {}))))


def _dataset(t: _Table) -> DatasetSpec:
    path = t.path("path", required=True, example='"images"')
    layout = t.string("layout", required=True, choices=LAYOUTS, example='"imagefolder"')
    return DatasetSpec(path, layout)


def _preprocess(t: _Table) -> PreprocessSpec:
    resize = t.number("resize_shorter", integer=True)
    crop = t.number("center_crop", integer=True)
    if crop is None:
        t.fail("[preprocess] has no 'center_crop'", "add center_crop = SIDE, the side of the "
               "model's square input")
    if resize is not None and crop > resize:
        t.fail(f"center_crop {crop} is larger than resize_shorter {resize}",
               "crop at most the resized shorter side")
    mean, std, scale = t.triple("mean"), t.triple("std"), t.number("scale")
    if scale is not None and (mean is not None or std is not None):
        t.fail("mean/std and scale are both given", "give mean and std ((pixel - mean) / std), "
               "or scale alone (pixel x scale), not both")
    if std is not None and min(std) <= 0:
        t.fail(f"[preprocess] std = {list(std)} is not valid", "give standard deviations > 0")
    return PreprocessSpec(
        color=t.string("color", "RGB", COLORS), resize_shorter=resize,
        interpolation=t.string("interpolation", "area", INTERPOLATIONS), center_crop=crop,
        mean=mean, std=std, scale=scale, layout=t.string("layout", "NCHW", TENSOR_LAYOUTS),
        dtype=t.string("dtype", "float32", DTYPES))


def _output(t: _Table) -> OutputSpec:
    return OutputSpec(kind=t.string("kind", "logits", KINDS),
                      class_offset=t.number("class_offset", 0, integer=True, low_open=False),
                      name=t.string("name"), class_names=t.path("class_names"))


def _accuracy(t: _Table) -> AccuracySpec:
    return AccuracySpec(reference=t.number("reference", high=1.0),
                        target_ratio=t.number("target_ratio", DEFAULT_TARGET_RATIO, high=1.0),
                        metric=t.string("metric", "top1", METRICS))
