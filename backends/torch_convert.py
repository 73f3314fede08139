"""ONNX graph -> ``torch.nn.Module``: the ``torch`` backend's converter, for the ops of this
project's workloads and the common ones around them.

Why a converter of our own: onnx2torch (last release 2024-08) imports torchvision, and no
torchvision build imports beside the registry's torch 2.13.0+cpu here. The module walks the ONNX
graph in dependency order: each node a small function of torch's functional API, called once,
with the initializers held as buffers (so ``.to(device, dtype)`` moves and casts them). Shapes are
read from the tensors at run time, so one module serves every batch size; ops that compute shapes
(``Shape``, ``NonZero``) are not supported, and inputs that must be constant (a ``Reshape``'s
shape, ``Unsqueeze`` axes) must be initializers or ``Constant`` outputs.

torch is imported at the top: only the ``torch`` backend's ``load`` imports this module. An op
outside ``SUPPORTED`` is a ``ModelError`` (exit 2) naming it. Every op is tested against
onnxruntime on a one-node model (tests/test_torch_convert.py).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from hwbench.errors import ModelError

# ONNX TensorProto element types -> torch dtype names (FLOAT follows the compute dtype).
_FLOAT = 1
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
           10: "float16", 11: "float64", 16: "bfloat16"}


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Graph:
    """What a node's builder may read: constants (initializers, ``Constant`` outputs), the opset
    and the compute dtype that ONNX FLOAT maps to."""

    def __init__(self, opset: int, float_dtype: Any) -> None:
        self.opset = opset
        self.float_dtype = float_dtype
        self.consts: dict[str, np.ndarray] = {}

    def const(self, name: str, node: Any, what: str) -> np.ndarray:
        if name not in self.consts:
            raise ModelError(f"backend torch: {node.op_type} node {node.name or node.output[0]!r} "
                             f"needs a constant {what} (an initializer), not a computed one; "
                             "run this model with --backend cpu")
        return self.consts[name]


def _pads(pads: list[int] | None, nd: int) -> tuple[list[int], bool]:
    """ONNX pads (begins then ends) -> torch's symmetric padding, or F.pad's order when the two
    ends differ (then the second value is true)."""
    pads = list(pads or [0] * 2 * nd)
    begin, end = pads[:nd], pads[nd:]
    if begin == end:
        return begin, False
    out: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [b, e]
    return out, True


def _auto_pad(node: Any, a: dict) -> None:
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        raise ModelError(f"backend torch: {node.op_type} with auto_pad={a['auto_pad']!r} is not "
                         "supported (explicit pads are); run this model with --backend cpu")


def _conv(node: Any, g: _Graph) -> Callable:
    a = _attrs(node)
    _auto_pad(node, a)
    nd = len(g.const(node.input[1], node, "weight").shape) - 2
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    stride, dil = a.get("strides", [1] * nd), a.get("dilations", [1] * nd)
    groups = a.get("group", 1)
    pad, asym = _pads(a.get("pads"), nd)

    def conv(x, w, b=None):
        if asym:
            x, p = F.pad(x, pad), 0
        else:
            p = pad
        return fn(x, w, b, stride, p, dil, groups)
    return conv


def _pool(kind: str) -> Callable:
    def build(node: Any, g: _Graph) -> Callable:
        a = _attrs(node)
        _auto_pad(node, a)
        k = a["kernel_shape"]
        nd = len(k)
        stride = a.get("strides", [1] * nd)
        ceil = bool(a.get("ceil_mode", 0))
        pad, asym = _pads(a.get("pads"), nd)
        if kind == "max":
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
            dil = a.get("dilations", [1] * nd)

            def maxpool(x):
                if asym:
                    return fn(F.pad(x, pad, value=-math.inf), k, stride, 0, dil, ceil)
                return fn(x, k, stride, pad, dil, ceil)
            return maxpool
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
        include = bool(a.get("count_include_pad", 0))
        if asym:
            raise ModelError("backend torch: AveragePool with asymmetric pads is not supported; "
                             "run this model with --backend cpu")
        return lambda x: fn(x, k, stride, pad, ceil, include)
    return build


def _gemm(node: Any, g: _Graph) -> Callable:
    a = _attrs(node)
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    ta, tb = a.get("transA", 0), a.get("transB", 0)
    if node.input[1] in g.consts and not tb:
        # Stored as (out, in), as F.linear wants it: one transpose at conversion, none per call.
        key = node.input[1] + "::T"
        g.consts[key] = np.ascontiguousarray(g.consts[node.input[1]].T)
        node.input[1], tb = key, 1

    def gemm(x, w, c=None):
        x = x.t() if ta else x
        if tb and alpha == 1.0 and (c is None or (beta == 1.0 and c.dim() <= 1)):
            return torch.nn.functional.linear(x, w, c)
        y = x @ (w.t() if tb else w)
        y = y * alpha if alpha != 1.0 else y
        return y if c is None else y + c * beta if beta != 1.0 else y + c
    return gemm


def _binary(name: str) -> Callable:
    def build(node: Any, g: _Graph) -> Callable:
        if name == "Div":
            def div(x, y):
                if not x.is_floating_point() and not y.is_floating_point():
                    return torch.div(x, y, rounding_mode="trunc")
                return x / y
            return div
        return {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul,
                "MatMul": torch.matmul}[name]
    return build


def _flatten(node: Any, g: _Graph) -> Callable:
    axis = _attrs(node).get("axis", 1)

    def flatten(x):
        ax = axis + x.dim() if axis < 0 else axis
        lead = math.prod(x.shape[:ax])
        return x.reshape(lead, -1) if x.numel() else x.reshape(lead, math.prod(x.shape[ax:]))
    return flatten


def _reshape(node: Any, g: _Graph) -> Callable:
    shape = [int(s) for s in g.const(node.input[1], node, "shape")]
    allowzero = _attrs(node).get("allowzero", 0)
    node.input.pop()  # the shape is read here, once, not fed at run time

    def reshape(x):
        dims = [x.shape[i] if s == 0 and not allowzero else s for i, s in enumerate(shape)]
        return x.reshape(dims)
    return reshape


def _transpose(node: Any, g: _Graph) -> Callable:
    perm = _attrs(node).get("perm")
    return lambda x: x.permute(perm if perm is not None else list(range(x.dim() - 1, -1, -1)))


def _batchnorm(node: Any, g: _Graph) -> Callable:
    eps = _attrs(node).get("epsilon", 1e-5)
    return lambda x, s, b, m, v: F.batch_norm(x, m, v, s, b, False, 0.0, eps)


def _softmax(node: Any, g: _Graph) -> Callable:
    axis = _attrs(node).get("axis", -1 if g.opset >= 13 else 1)
    if g.opset >= 13:
        return lambda x: torch.softmax(x, axis)

    def softmax_2d(x):  # opset < 13: over the input coerced to 2-D at `axis`
        ax = axis + x.dim() if axis < 0 else axis
        flat = x.reshape(math.prod(x.shape[:ax]), -1)
        return torch.softmax(flat, 1).reshape(x.shape)
    return softmax_2d


def _clip(node: Any, g: _Graph) -> Callable:
    a = _attrs(node)
    if g.opset < 11:
        lo, hi = a.get("min"), a.get("max")
        return lambda x: torch.clamp(x, lo, hi)
    return lambda x, lo=None, hi=None: torch.clamp(x, lo, hi)


def _concat(node: Any, g: _Graph) -> Callable:
    axis = _attrs(node)["axis"]
    return lambda *xs: torch.cat(xs, axis)


def _gather(node: Any, g: _Graph) -> Callable:
    axis = _attrs(node).get("axis", 0)

    def gather(x, idx):
        ax = axis + x.dim() if axis < 0 else axis
        size = x.shape[ax]
        flat = idx.reshape(-1).long()
        flat = flat.where(flat >= 0, flat + size)
        out = x.index_select(ax, flat)
        return out.reshape(*x.shape[:ax], *idx.shape, *x.shape[ax + 1:])
    return gather


def _axes(node: Any, g: _Graph, since: int) -> list[int] | None:
    """Axes given as an attribute (before opset `since`) or as a constant second input."""
    if g.opset < since:
        axes = _attrs(node).get("axes")
        return None if axes is None else [int(v) for v in axes]
    if len(node.input) < 2 or not node.input[1]:
        return None
    axes = [int(v) for v in g.const(node.input[1], node, "axes").reshape(-1)]
    node.input.pop()
    return axes


def _reduce(fn: Callable, axes_input_opset: int) -> Callable:
    """The converter of a Reduce* op computed by ``fn`` (torch.mean, torch.sum); its axes moved
    from an attribute to an input at ``axes_input_opset``."""
    def convert(node: Any, g: _Graph) -> Callable:
        axes = _axes(node, g, axes_input_opset)
        a = _attrs(node)
        keep = bool(a.get("keepdims", 1))
        if axes is None and a.get("noop_with_empty_axes", 0):
            return lambda x: x
        if axes is None:
            return lambda x: fn(x, list(range(x.dim())), keep)
        return lambda x: fn(x, axes, keep)
    return convert


def _argmax(node: Any, g: _Graph) -> Callable:
    a = _attrs(node)
    if a.get("select_last_index", 0):
        raise ModelError("backend torch: ArgMax with select_last_index=1 is not supported; run "
                         "this model with --backend cpu")
    axis, keep = a.get("axis", 0), bool(a.get("keepdims", 1))
    return lambda x: torch.argmax(x, axis, keep)


def _unsqueeze(node: Any, g: _Graph) -> Callable:
    axes = _axes(node, g, 13)

    def unsqueeze(x):
        rank = x.dim() + len(axes)
        for ax in sorted(a + rank if a < 0 else a for a in axes):
            x = x.unsqueeze(ax)
        return x
    return unsqueeze


def _squeeze(node: Any, g: _Graph) -> Callable:
    axes = _axes(node, g, 13)
    if axes is None:
        return lambda x: x.squeeze()
    return lambda x: x.squeeze(tuple(axes))


def _cast(node: Any, g: _Graph) -> Callable:
    to = _attrs(node)["to"]
    if to not in _DTYPES:
        raise ModelError(f"backend torch: Cast to ONNX type {to} is not supported")
    # FLOAT is the compute dtype (bf16 under dtype=bf16); FLOAT16 stays fp16, as the fp16
    # artifact says.
    target = g.float_dtype if to == _FLOAT else getattr(torch, _DTYPES[to])
    return lambda x: x.to(target)


def _unary(fn_name: str) -> Callable:
    def build(node: Any, g: _Graph) -> Callable:
        return getattr(torch, fn_name)
    return build


def _global_avg(node: Any, g: _Graph) -> Callable:
    return lambda x: torch.mean(x, list(range(2, x.dim())), keepdim=True)


_BUILDERS: dict[str, Callable[[Any, _Graph], Callable]] = {
    "Add": _binary("Add"), "ArgMax": _argmax, "AveragePool": _pool("avg"),
    "BatchNormalization": _batchnorm,
    "Cast": _cast, "Clip": _clip, "Concat": _concat, "Conv": _conv, "Div": _binary("Div"),
    "Flatten": _flatten, "Gather": _gather, "Gemm": _gemm, "GlobalAveragePool": _global_avg,
    "Identity": lambda n, g: lambda x: x, "MatMul": _binary("MatMul"), "MaxPool": _pool("max"),
    "Mul": _binary("Mul"), "ReduceMean": _reduce(torch.mean, 18), "ReduceSum": _reduce(torch.sum, 13),
    "Relu": _unary("relu"),
    "Reshape": _reshape, "Sigmoid": _unary("sigmoid"), "Softmax": _softmax,
    "Squeeze": _squeeze, "Sub": _binary("Sub"), "Tanh": _unary("tanh"),
    "Transpose": _transpose, "Unsqueeze": _unsqueeze,
}
SUPPORTED = tuple(sorted([*_BUILDERS, "Constant"]))


def unsupported_ops(model: Any) -> list[str]:
    """The graph's ops this converter has no builder for (other domains named with theirs)."""
    bad = set()
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            bad.add(f"{n.domain}.{n.op_type}")
        elif n.op_type not in SUPPORTED:
            bad.add(n.op_type)
    return sorted(bad)


def convert(model: Any, float_dtype: torch.dtype | None = None) -> OnnxModule:
    """A ``torch.nn.Module`` computing `model` (an ``onnx.ModelProto``); its ``forward`` takes the
    graph's inputs in order and returns its output (a tuple when there are several). ONNX FLOAT
    tensors (initializers and casts) become `float_dtype` (default float32)."""
    from onnx import numpy_helper

    bad = unsupported_ops(model)
    if bad:
        raise ModelError(f"backend torch cannot convert ONNX op {', '.join(bad)}: it supports "
                         f"{', '.join(SUPPORTED)}; run this model with --backend cpu")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    g = _Graph(opset, float_dtype or torch.float32)
    for t in model.graph.initializer:
        g.consts[t.name] = numpy_helper.to_array(t)
    steps = []
    for node in _in_order(model.graph):
        if node.op_type == "Constant":
            a = _attrs(node)
            if "value" not in a:
                raise ModelError("backend torch: Constant supports the 'value' attribute only")
            g.consts[node.output[0]] = numpy_helper.to_array(a["value"])
            continue
        node = _copy(node)
        fn = _BUILDERS[node.op_type](node, g)
        steps.append((fn, tuple(node.input), tuple(node.output)))
    inits = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    outputs = [o.name for o in model.graph.output]
    return OnnxModule(steps, inputs, outputs, g.consts, g.float_dtype)


def _in_order(graph: Any) -> list:
    """The nodes in an order where each comes after its inputs' producers: onnxruntime's fp16
    converter appends its input and output casts at the end of the node list."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        left = [n for n in pending if not set(n.input) <= ready]
        done = [n for n in pending if set(n.input) <= ready]
        if not done:
            raise ModelError(f"backend torch: node {left[0].name or left[0].op_type!r} reads a "
                             f"value no node computes ({sorted(set(left[0].input) - ready)[0]!r})")
        for n in done:
            ready.update(n.output)
        ordered += done
        pending = left
    return ordered


def _copy(node: Any) -> Any:
    from onnx import NodeProto

    out = NodeProto()
    out.CopyFrom(node)
    return out


class OnnxModule(torch.nn.Module):
    """The converted graph: the nodes in ONNX order over named values."""

    def __init__(self, steps: list, inputs: list[str], outputs: list[str],
                 consts: dict[str, np.ndarray], float_dtype: torch.dtype) -> None:
        super().__init__()
        used = {i for _, ins, _ in steps for i in ins} | set(outputs)
        self._names: list[tuple[str, str]] = []
        for k, (name, arr) in enumerate(sorted(consts.items())):
            if name not in used:
                continue
            t = torch.from_numpy(np.array(arr))
            if arr.dtype == np.float32:
                t = t.to(float_dtype)
            self.register_buffer(f"c{k}", t)
            self._names.append((name, f"c{k}"))
        self._steps = steps
        self._inputs, self._outputs = inputs, outputs

    def forward(self, *xs: torch.Tensor) -> Any:
        env = dict(zip(self._inputs, xs))
        for name, attr in self._names:
            env[name] = getattr(self, attr)
        for fn, ins, outs in self._steps:
            env[outs[0]] = fn(*[env[i] if i else None for i in ins])
        if len(self._outputs) == 1:
            return env[self._outputs[0]]
        return tuple(env[o] for o in self._outputs)
