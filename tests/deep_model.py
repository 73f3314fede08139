"""A deep image classifier made in the test, shaped like the mobile networks people deploy
(EfficientNet-Lite, MobileNet): a strided stem, then residual blocks of 3x3 depthwise and 1x1
pointwise convolutions with ReLU6, global average pooling of non-negative features that carry a
per-channel offset (the shift a folded BatchNorm leaves), and a 1000-class head whose rows sum to
zero, so logits are small differences of large features. Weights are seeded He-normal.

Depth and that head make rounding accumulate as it does in a real network: an honest fp16
conversion of this model lands at about 4e-3 of the output scale on photo-like 224x224 inputs,
the size measured on EfficientNet-Lite0 with real ImageNet weights (4.9e-3), where a shallow
model lands at 2e-4."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BLOCKS, CHANNELS, OFFSET = 24, 32, 400.0


def deep_classifier(path: Path, blocks: int = BLOCKS, ch: int = CHANNELS,
                    offset: float = OFFSET, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def weight(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def conv(x: str, out: str, w: np.ndarray, **kw) -> None:
        nodes.append(helper.make_node("Conv", [x, weight(f"{out}.w", w),
                                               weight(f"{out}.b", np.zeros(w.shape[0]))],
                                      [out], **kw))

    conv("input", "stem", rng.standard_normal((ch, 3, 4, 4)) * np.sqrt(2 / 48), strides=[4, 4])
    nodes.append(helper.make_node("Relu", ["stem"], ["h0"]))
    lo, hi = weight("six.lo", np.array(0.0)), weight("six.hi", np.array(6.0))
    x = "h0"
    for i in range(blocks):
        conv(x, f"dw{i}", rng.standard_normal((ch, 1, 3, 3)) * np.sqrt(2 / 9), group=ch,
             pads=[1, 1, 1, 1])
        nodes.append(helper.make_node("Clip", [f"dw{i}", lo, hi], [f"r{i}"]))
        conv(f"r{i}", f"pw{i}", rng.standard_normal((ch, ch, 1, 1)) * np.sqrt(1 / ch))
        nodes.append(helper.make_node("Add", [x, f"pw{i}"], [f"a{i}"]))
        x = f"a{i}"
    head = rng.standard_normal((1000, ch)) * np.sqrt(1 / ch)
    nodes += [helper.make_node("Relu", [x], ["features"]),
              helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
              helper.make_node("Add", ["pooled", weight("offset", np.full((1, ch, 1, 1), offset))],
                               ["shifted"]),
              helper.make_node("Flatten", ["shifted"], ["flat"]),
              helper.make_node("Gemm", ["flat", weight("head.w", head - head.mean(1, keepdims=True)),
                                        weight("head.b", np.zeros(1000))], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "deep", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
