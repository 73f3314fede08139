"""``onnx``: any ONNX model, fed seeded synthetic inputs or the user's tensors (``--inputs``).

Every input of the graph gets a tensor of its declared dtype and shape. A dynamic leading
dimension is the batch, which the harness sets (``--batch-size``); the other dynamic dimensions
come from ``--input-shape NAME=DxD`` (the per-sample shape, without the batch, as perf_analyzer's
``--shape``) or from the arrays of ``--inputs FILE.npz``. A sample of a model with several inputs
is one numpy record with a field per input (``hwbench.artifacts.record_dtype``).

Synthetic inputs behave like real ones: float inputs are standard-normal; an integer input that
indexes an embedding table (a ``Gather`` of an initializer) holds ids below the table's size;
another integer or bool input is a padding mask (ones for a seeded prefix of the last dimension,
at least one, zeros after). Sample i is the same whichever others are loaded.

There are no labels: accuracy is not validated, and fidelity against the FP32 reference checks
every output (hwbench.quality.fidelity).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx

from hwbench.artifacts import ModelArtifact, TensorSpec, record_dtype, sha256_of
from hwbench.errors import DatasetError, ModelError, UsageError
from hwbench.workloads import labelled
from hwbench.workloads.base import Workload, read_model

SYNTHETIC_SAMPLES = 1024
DEFAULT_LATENCY_BOUND_MS = 15.0  # as a workload file's, for lack of the model's own
_KINDS = "float32, float16, float64, int8, int16, int32, int64, uint8 or bool"


class OnnxModel(Workload):
    name: ClassVar[str] = "onnx"
    description: ClassVar[str] = ("any ONNX model (--model), every input fed seeded synthetic "
                                  "tensors (--input-shape) or yours (--inputs FILE.npz)")
    feeds_tensors: ClassVar[bool] = True
    server_latency_bound_ms: ClassVar[float] = DEFAULT_LATENCY_BOUND_MS
    mlperf_performance_sample_count: ClassVar[int] = SYNTHETIC_SAMPLES

    def __init__(self, model: str | None = None, dataset: str | None = None, seed: int = 1,
                 input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = (),
                 inputs: str | None = None) -> None:
        if model is None:
            raise UsageError("--workload onnx runs your model: give --model M.onnx")
        if dataset is not None:
            raise UsageError("--workload onnx takes its tensors from --inputs FILE.npz, not "
                             "--dataset: use --inputs")
        super().__init__(model=model, dataset=None, seed=seed)
        self.input_shapes = dict(input_shapes)
        self.inputs_path = Path(inputs) if inputs else None
        self._arrays: dict[str, np.ndarray] | None = None
        self._data: np.ndarray | None = None  # the npz's samples as records
        self._vocab: dict[str, int] = {}
        self._batch_limit: int | None = None
        self.sample_shape = ()

    # --- the model -------------------------------------------------------------------------
    @property
    def synthetic_weights(self) -> bool:
        return False

    def _describe(self, path: Path) -> ModelArtifact:
        proto, graph_inputs = read_model(path)
        graph = proto.graph
        if not graph_inputs or not graph.output:
            raise ModelError(f"{path}: the model has no inputs or no outputs; give --model a "
                             "model that takes tensors and returns some")
        names = [i.name for i in graph_inputs]
        unknown = sorted(set(self.input_shapes) - set(names))
        if unknown:
            raise UsageError(f"--input-shape {unknown[0]}: {path.name} has no input "
                             f"{unknown[0]!r}; its inputs are {', '.join(names)}")
        if self.inputs_path is not None:
            self._arrays = _read_inputs(self.inputs_path, names)
        specs = tuple(self._input_spec(path, i) for i in graph_inputs)
        _check_shared_dims(graph_inputs, specs, self.inputs_path)
        self._vocab = _vocabularies(graph, {i.name: i for i in graph.initializer}, names)
        if self._arrays is not None:
            self._data = _records(self.inputs_path, self._arrays, specs)
        outputs = _output_specs(proto, specs)
        self.sample_shape = specs[0].shape
        return ModelArtifact(path=path, sha256=sha256_of(path), input_name=specs[0].name,
                             output_name=outputs[0].name, sample_shape=specs[0].shape,
                             output_shape=outputs[0].shape, dtype=specs[0].dtype,
                             inputs=specs, outputs=outputs)

    def _input_spec(self, path: Path, graph_input: onnx.ValueInfoProto) -> TensorSpec:
        name = graph_input.name
        ttype = graph_input.type.tensor_type
        dtype = _numpy_dtype(path, name, ttype.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
        labels = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                  for d in ttype.shape.dim]
        if not dims:
            raise ModelError(f"{path}: input {name!r} is a scalar, but hwbench batches samples "
                             "along the first dimension: export it with a batch dimension")
        if dims[0] is not None and dims[0] != 1:
            raise ModelError(f"{path}: input {name!r} has a fixed batch of {dims[0]} "
                             f"[{', '.join(labels)}]: export the model with a dynamic batch "
                             "dimension (or a batch of 1)")
        if dims[0] == 1:
            self._batch_limit = 1
        per_sample = dims[1:]
        return TensorSpec(name, dtype.name, self._shape_of(name, per_sample, labels))

    def _shape_of(self, name: str, dims: list[int | None], labels: list[str]) -> tuple[int, ...]:
        """The per-sample shape: the declared dims, the dynamic ones from --input-shape or the
        npz; a missing one is a UsageError naming the input and its dimensions."""
        shown = f"[{', '.join(labels)}]"
        example = "x".join(lab if lab.isdigit() else "D" for lab in labels[1:]) or "D"
        given = self.input_shapes.get(name)
        if given is None and self._arrays is not None:
            given = tuple(self._arrays[name].shape[1:])
        if given is None:
            if any(d is None for d in dims):
                raise UsageError(f"input {name!r} has dynamic dimensions {shown}: give its "
                                 f"per-sample shape with --input-shape {name}={example} (the "
                                 "batch is --batch-size)")
            return tuple(dims)
        if len(given) != len(dims) or any(d is not None and d != g for d, g in zip(dims, given)):
            raise UsageError(f"input {name!r} is {shown}, so a sample is {len(dims)} "
                             f"dimension(s) [{', '.join(labels[1:])}], not "
                             f"{'x'.join(map(str, given)) or 'a scalar'}: give --input-shape "
                             f"{name}={example} with the fixed sizes as declared")
        return tuple(int(g) for g in given)

    def batch_limit(self) -> int | None:
        return self._batch_limit

    # --- the samples -----------------------------------------------------------------------
    def sample_count(self) -> int:
        if self._data is not None:
            return len(self._data)
        if self.inputs_path is not None and self._artifact is None:
            self.artifact()
            return len(self._data)
        return SYNTHETIC_SAMPLES

    def load_samples(self, indices: np.ndarray) -> np.ndarray:
        specs = self.artifact().inputs
        indices = np.asarray(indices, dtype=np.int64)
        if self._data is not None:
            return self._data[indices]
        single = len(specs) == 1  # a plain array, as every built-in workload's
        shape = (len(indices), *specs[0].shape) if single else (len(indices),)
        out = np.empty(shape, dtype=record_dtype(specs))
        for row, i in enumerate(indices.tolist()):
            rng = np.random.default_rng([self.seed, i])
            for spec in specs:
                value = self._synthetic(rng, spec)
                if single:
                    out[row] = value
                else:
                    out[spec.name][row] = value
        return out

    def _synthetic(self, rng: np.random.Generator, spec: TensorSpec) -> np.ndarray:
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            return rng.standard_normal(spec.shape).astype(dtype)
        if spec.name in self._vocab:
            return rng.integers(0, self._vocab[spec.name], spec.shape).astype(dtype)
        return _padding_mask(rng, spec.shape).astype(dtype)

    # --- correctness -----------------------------------------------------------------------
    def accuracy_unavailable(self) -> str | None:
        return ("an ONNX model without labels: accuracy not validated (fidelity compares every "
                "output with the FP32 reference)")

    def images_unavailable(self) -> str | None:
        return "an ONNX model's inputs are tensors, not images: robustness not measured"

    def encoded_unavailable(self) -> str | None:
        return ("--workload onnx feeds tensors, not encoded files: --pipeline full and both "
                "need resnet50 with --dataset, digits, or a workload file with images")

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        a = self._artifact
        d["inputs"] = {
            "source": str(self.inputs_path) if self.inputs_path else "synthetic (seeded)",
            "tensors": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}
                        for t in (a.inputs if a else ())],
            "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}
                        for t in (a.outputs if a else ())],
            "vocabulary": dict(self._vocab) or None}
        return d


def _check_shared_dims(graph_inputs: list, specs: tuple[TensorSpec, ...],
                       npz: Path | None) -> None:
    """A dimension the graph names alike in several inputs (``seq`` of ``input_ids`` and
    ``attention_mask``) must get one size."""
    seen: dict[str, tuple[str, int]] = {}
    for graph_input, spec in zip(graph_inputs, specs):
        for d, size in zip(list(graph_input.type.tensor_type.shape.dim)[1:], spec.shape):
            if not d.dim_param:
                continue
            first = seen.setdefault(d.dim_param, (spec.name, size))
            if first[1] != size:
                where = f"the arrays of {npz}" if npz else "--input-shape"
                raise UsageError(f"inputs {first[0]!r} and {spec.name!r} share dimension "
                                 f"{d.dim_param!r}, but {where} set it to {first[1]} and "
                                 f"{size}: give them the same size")


def _numpy_dtype(path: Path, name: str, elem_type: int) -> np.dtype:
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError):
        dtype = None
    if dtype is None or dtype.kind not in "fiub":
        kind = onnx.TensorProto.DataType.Name(elem_type).lower()
        raise ModelError(f"{path}: input {name!r} is {kind}; hwbench feeds {_KINDS}: export the "
                         "model with inputs of those types")
    return dtype


def _vocabularies(graph: onnx.GraphProto, init: dict, names: list[str]) -> dict[str, int]:
    """Inputs that index an embedding table directly (``Gather`` of an initializer): the size of
    the dimension they index."""
    vocab: dict[str, int] = {}
    for node in graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[1] not in names:
            continue
        table = init.get(node.input[0])
        if table is None:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        size = int(table.dims[axis])
        name = node.input[1]
        vocab[name] = min(vocab.get(name, size), size)
    return vocab


def _padding_mask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Ones over a seeded prefix (at least one) of the last dimension, zeros after."""
    if not shape:
        return np.ones((), np.int64)
    lead = int(np.prod(shape[:-1], dtype=np.int64))
    width = shape[-1]
    keep = rng.integers(1, width + 1, lead) if width else np.zeros(lead, np.int64)
    mask = np.arange(width)[None, :] < keep[:, None]
    return mask.reshape(shape)


def _output_specs(proto: onnx.ModelProto, inputs: tuple[TensorSpec, ...]
                  ) -> tuple[TensorSpec, ...]:
    """The graph's outputs, per-sample shapes inferred with the inputs' shapes fixed (-1 where
    inference cannot tell)."""
    graph = proto.graph
    inferred = {}
    try:
        fixed = onnx.ModelProto()
        fixed.CopyFrom(proto)
        by_name = {t.name: t for t in inputs}
        for i in fixed.graph.input:
            if i.name in by_name:
                dims = i.type.tensor_type.shape.dim
                for d, size in zip(list(dims)[1:], by_name[i.name].shape):
                    d.dim_value = size
        done = onnx.shape_inference.infer_shapes(fixed)
        inferred = {o.name: o for o in done.graph.output}
    except Exception:  # inference is best effort: an unknown op or an external-data model
        inferred = {}
    specs = []
    for out in graph.output:
        o = inferred.get(out.name, out)
        ttype = o.type.tensor_type
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)).name
        except (KeyError, TypeError):
            dtype = "float32"
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1
                     for d in list(ttype.shape.dim)[1:])
        specs.append(TensorSpec(out.name, dtype, dims))
    return tuple(specs)


def _read_inputs(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    arrays = labelled.open_npz(path, "numpy.savez(path, " + ", ".join(f"{n}=..." for n in names)
                               + ")")
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DatasetError(f"{path} has no array {missing[0]!r}: save one array per model input, "
                           f"named {', '.join(names)}")
    extra = sorted(set(arrays) - set(names))
    if extra:
        raise DatasetError(f"{path}: array {extra[0]!r} is not an input of the model (its inputs "
                           f"are {', '.join(names)}): drop it or rename it")
    counts = {n: (len(a) if a.ndim else 0) for n, a in arrays.items()}
    if len(set(counts.values())) != 1 or not next(iter(counts.values())):
        sizes = ", ".join(f"{n} {c}" for n, c in counts.items())
        raise DatasetError(f"{path}: the arrays' leading dimensions ({sizes}) must all be the "
                           "number of samples, at least 1: save the same samples of each input")
    return arrays


def _records(path: Path, arrays: dict[str, np.ndarray], specs: tuple[TensorSpec, ...]
             ) -> np.ndarray:
    """The npz's samples, checked against the model's inputs, as one array of samples."""
    for t in specs:
        a = arrays[t.name]
        if a.dtype != np.dtype(t.dtype):
            raise DatasetError(f"{path}: array {t.name!r} is {a.dtype}, the model's input is "
                               f"{t.dtype}: save it as {t.dtype}")
        if tuple(a.shape[1:]) != t.shape:
            raise DatasetError(f"{path}: array {t.name!r} holds samples of "
                               f"{list(a.shape[1:])}, the model takes {list(t.shape)}: save "
                               f"({len(a)}, {', '.join(map(str, t.shape))})")
    if len(specs) == 1:
        return np.ascontiguousarray(arrays[specs[0].name])
    out = np.empty(len(arrays[specs[0].name]), dtype=record_dtype(specs))
    for t in specs:
        out[t.name] = arrays[t.name]
    return out
