"""The ``torch`` backend's ONNX converter, op by op against onnxruntime on one-node models, then
the project's workload graphs end to end, and an op it does not know refused by name."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")
from hwbench.backends import torch_convert  # noqa: E402
from hwbench.errors import ModelError  # noqa: E402

_RNG = np.random.default_rng(7)
_ELEM = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("int64"): TensorProto.INT64,
         np.dtype("float16"): TensorProto.FLOAT16}


def _r(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape).astype(np.float32)


def _model(op: str, inputs: dict, consts: dict | None = None, opset: int = 17,
           out_type: int = TensorProto.FLOAT, order: list[str] | None = None,
           **attrs) -> onnx.ModelProto:
    """One `op` node over graph inputs `inputs` and initializers `consts` (fed in `order`, ""
    for an absent optional input)."""
    consts = consts or {}
    names = order or [*inputs, *consts]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info(k, _ELEM[v.dtype], v.shape)
                     for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", out_type, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _both(model: onnx.ModelProto, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    mod = torch_convert.convert(model).eval()
    with torch.inference_mode():
        got = mod(*[torch.from_numpy(v) for v in inputs.values()])
    return got.numpy(), ref


X4 = _r(2, 3, 9, 9)
CASES = {
    "Conv": ("Conv", {"x": X4}, {"w": _r(4, 3, 3, 3), "b": _r(4)}, {"pads": [1, 1, 1, 1]}),
    "Conv-stride-dilation": ("Conv", {"x": X4}, {"w": _r(4, 3, 3, 3)},
                             {"strides": [2, 2], "dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    "Conv-groups": ("Conv", {"x": _r(2, 4, 7, 7)}, {"w": _r(8, 2, 3, 3), "b": _r(8)},
                    {"group": 2}),
    "Conv-depthwise-asymmetric": ("Conv", {"x": _r(1, 3, 8, 8)}, {"w": _r(3, 1, 3, 3)},
                                  {"group": 3, "pads": [0, 1, 1, 2], "strides": [2, 1]}),
    "Conv1d": ("Conv", {"x": _r(2, 3, 10)}, {"w": _r(5, 3, 3)}, {"pads": [1, 1]}),
    "Relu": ("Relu", {"x": X4}, {}, {}),
    "Sigmoid": ("Sigmoid", {"x": X4}, {}, {}),
    "Tanh": ("Tanh", {"x": X4}, {}, {}),
    "MaxPool": ("MaxPool", {"x": X4}, {}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                           "pads": [1, 1, 1, 1]}),
    "MaxPool-ceil-asymmetric": ("MaxPool", {"x": X4}, {}, {"kernel_shape": [2, 2],
                                "strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": 1}),
    "AveragePool": ("AveragePool", {"x": X4}, {}, {"kernel_shape": [3, 3], "strides": [2, 2],
                                                   "pads": [1, 1, 1, 1]}),
    "AveragePool-include-pad": ("AveragePool", {"x": X4}, {}, {
        "kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "GlobalAveragePool": ("GlobalAveragePool", {"x": X4}, {}, {}),
    "Add-broadcast": ("Add", {"x": X4}, {"c": _r(3, 1, 1)}, {}),
    "Sub": ("Sub", {"x": X4, "z": _r(2, 3, 9, 9)}, {}, {}),
    "Mul": ("Mul", {"x": X4}, {"c": _r(9)}, {}),
    "Div": ("Div", {"x": X4}, {"c": _r(9) + 3}, {}),
    "MatMul": ("MatMul", {"x": _r(2, 5, 6)}, {"w": _r(6, 4)}, {}),
    "Gemm": ("Gemm", {"x": _r(3, 6)}, {"w": _r(6, 4), "c": _r(4)}, {}),
    "Gemm-transB": ("Gemm", {"x": _r(3, 6)}, {"w": _r(4, 6), "c": _r(4)}, {"transB": 1}),
    "Gemm-transA-alpha-beta": ("Gemm", {"x": _r(6, 3)}, {"w": _r(6, 4), "c": _r(3, 4)},
                               {"transA": 1, "alpha": 0.5, "beta": 2.0}),
    "Gemm-no-bias": ("Gemm", {"x": _r(3, 6)}, {"w": _r(4, 6)}, {"transB": 1, "alpha": 1.5}),
    "Flatten": ("Flatten", {"x": X4}, {}, {"axis": 2}),
    "Flatten-0": ("Flatten", {"x": X4}, {}, {"axis": 0}),
    "Reshape": ("Reshape", {"x": X4}, {"s": np.array([0, -1, 9], np.int64)}, {}),
    "Transpose": ("Transpose", {"x": X4}, {}, {"perm": [0, 2, 3, 1]}),
    "Transpose-default": ("Transpose", {"x": _r(2, 3, 4)}, {}, {}),
    "BatchNormalization": ("BatchNormalization", {"x": X4},
                           {"s": _r(3), "b": _r(3), "m": _r(3), "v": np.abs(_r(3)) + 0.5},
                           {"epsilon": 1e-3}),
    "Softmax": ("Softmax", {"x": _r(2, 3, 5)}, {}, {}),
    "Softmax-axis": ("Softmax", {"x": _r(2, 3, 5)}, {}, {"axis": 1}),
    "Clip": ("Clip", {"x": X4}, {"lo": np.array(-0.5, np.float32),
                                 "hi": np.array(0.7, np.float32)}, {}),
    "Concat": ("Concat", {"x": X4, "z": _r(2, 2, 9, 9)}, {}, {"axis": 1}),
    "Gather-embedding": ("Gather", {"ids": np.array([[1, 0, 4], [3, 3, -1]], np.int64)},
                         {"table": _r(5, 8)}, {}, ["table", "ids"]),
    "Gather-axis1": ("Gather", {"x": _r(3, 5, 2)}, {"i": np.array([4, 0], np.int64)},
                     {"axis": 1}),
    "Gather-scalar": ("Gather", {"x": _r(3, 5)}, {"i": np.array(2, np.int64)}, {}),
    "ReduceMean": ("ReduceMean", {"x": X4}, {}, {"axes": [2, 3], "keepdims": 0}),
    "ReduceMean-all": ("ReduceMean", {"x": X4}, {}, {}),
    "ReduceSum": ("ReduceSum", {"x": X4}, {"a": np.array([2, 3], np.int64)}, {"keepdims": 0}),
    "ReduceSum-all": ("ReduceSum", {"x": X4}, {}, {}),
    "ArgMax": ("ArgMax", {"x": _r(4, 7)}, {}, {"axis": 1, "keepdims": 0,
                                               "out_type": TensorProto.INT64}),
    "ArgMax-keep": ("ArgMax", {"x": X4}, {}, {"axis": -1, "out_type": TensorProto.INT64}),
    "Identity": ("Identity", {"x": X4}, {}, {}),
    "Unsqueeze": ("Unsqueeze", {"x": _r(2, 3)}, {"a": np.array([0, -1], np.int64)}, {}),
    "Squeeze": ("Squeeze", {"x": _r(2, 1, 3, 1)}, {"a": np.array([1], np.int64)}, {}),
    "Squeeze-all": ("Squeeze", {"x": _r(2, 1, 3, 1)}, {}, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_op_computes_as_onnxruntime(case):
    op, inputs, consts, attrs, *order = CASES[case]
    model = _model(op, inputs, consts, order=order[0] if order else None, **attrs)
    got, ref = _both(model, inputs)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_clip_with_an_absent_min_and_opset_10_attributes():
    x = {"x": X4}
    model = _model("Clip", x, {"hi": np.array(0.3, np.float32)}, order=["x", "", "hi"])
    np.testing.assert_array_equal(*_both(model, x))
    old = _model("Clip", x, opset=10, min=-0.2, max=0.4)
    np.testing.assert_array_equal(*_both(old, x))


def test_unsqueeze_squeeze_and_reduce_mean_take_axes_as_attributes_before_opset_13():
    x = {"x": _r(2, 3)}
    np.testing.assert_array_equal(*_both(_model("Unsqueeze", x, opset=11, axes=[1]), x))
    np.testing.assert_allclose(*_both(_model("ReduceMean", x, opset=11, axes=[1]), x),
                               rtol=1e-6)


def test_reduce_mean_takes_axes_as_an_input_from_opset_18():
    x = {"x": X4}
    m = _model("ReduceMean", x, {"a": np.array([1], np.int64)}, opset=18)
    np.testing.assert_allclose(*_both(m, x), rtol=1e-6)


def test_softmax_before_opset_13_coerces_to_two_dimensions():
    x = {"x": _r(2, 3, 5)}
    np.testing.assert_allclose(*_both(_model("Softmax", x, opset=11, axis=1), x), rtol=1e-5)


@pytest.mark.parametrize("to,np_type", [(TensorProto.INT64, np.int64),
                                        (TensorProto.FLOAT16, np.float16)])
def test_cast(to, np_type):
    x = {"x": X4 * 10}
    got, ref = _both(_model("Cast", x, out_type=to, to=to), x)
    assert got.dtype == ref.dtype == np_type
    np.testing.assert_array_equal(got, ref)


def test_integer_division_truncates_as_onnx_does():
    x = {"a": np.array([7, -7, 9], np.int64), "b": np.array([2, 2, -4], np.int64)}
    got, ref = _both(_model("Div", x, out_type=TensorProto.INT64), x)
    np.testing.assert_array_equal(got, ref)


def test_constant_nodes_feed_later_nodes():
    node_c = helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(
        np.array([2, -1], np.int64)))
    node_r = helper.make_node("Reshape", ["x", "s"], ["y"])
    graph = helper.make_graph([node_c, node_r], "c",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    x = {"x": _r(2, 6)}
    np.testing.assert_array_equal(*_both(m, x))


@pytest.mark.parametrize("workload", ["tiny", "digits", "resnet50"])
def test_workload_graphs_match_onnxruntime_at_fp32(workload):
    from hwbench import workloads

    w = workloads.create(workload)
    art = w.artifact()
    x = w.load_samples(np.arange(3))
    model = onnx.load(str(art.path))
    got, ref = _both(model, {art.input_name: x})
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= 2e-6 * scale  # fp32 rounding order only
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_a_batch_size_the_module_was_not_built_for_runs():
    w_ = _r(4, 6)
    model = _model("Gemm", {"x": _r(3, 6)}, {"w": w_}, transB=1)
    mod = torch_convert.convert(model)
    for n in (1, 7):
        x = _r(n, 6)
        np.testing.assert_allclose(mod(torch.from_numpy(x)).detach().numpy(), x @ w_.T,
                                   rtol=1e-5, atol=1e-6)


def test_an_unknown_op_is_refused_by_name():
    model = _model("Einsum", {"x": _r(2, 3)}, {"w": _r(3, 4)}, equation="ij,jk->ik")
    with pytest.raises(ModelError) as err:
        torch_convert.convert(model)
    msg = str(err.value)
    assert "ONNX op Einsum" in msg and "Conv" in msg and "--backend cpu" in msg
    assert "\n" not in msg


def test_a_computed_shape_is_refused_with_the_node_named():
    x = {"x": X4, "s": np.array([2, -1], np.int64)}
    model = _model("Reshape", x)
    with pytest.raises(ModelError, match="Reshape node .* needs a constant shape"):
        torch_convert.convert(model)


def test_bf16_compute_dtype_casts_weights_and_float_casts():
    model = _model("Gemm", {"x": _r(3, 6)}, {"w": _r(4, 6), "c": _r(4)}, transB=1)
    mod = torch_convert.convert(model, torch.bfloat16)
    assert {b.dtype for b in mod.buffers()} == {torch.bfloat16}
    cast = torch_convert.convert(_model("Cast", {"x": X4}, to=TensorProto.FLOAT),
                                 torch.bfloat16)
    assert cast(torch.from_numpy(X4)).dtype == torch.bfloat16


def test_nodes_listed_after_their_consumers_run_in_dependency_order():
    """onnxruntime's fp16 converter appends its input and output casts at the end of the list."""
    relu = helper.make_node("Relu", ["h"], ["y"])
    neg = helper.make_node("Sub", ["z", "x"], ["h"])
    graph = helper.make_graph([relu, neg], "late",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(_r(2, 3), "z")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    x = {"x": _r(2, 3)}
    got = torch_convert.convert(m)(torch.from_numpy(x["x"])).numpy()
    np.testing.assert_array_equal(got, np.maximum(numpy_helper.to_array(
        graph.initializer[0]) - x["x"], 0))
