"""ONNX graphs with seeded synthetic weights: performance runs need no downloaded model.

Batch-norm is folded into convolution biases, as in the exported MLPerf models.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime 1.10 and later


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def weight(self, shape: tuple[int, ...], fan_in: int, scale: float = 1.0) -> str:
        n = self.name("w")
        std = scale * np.sqrt(2.0 / fan_in)
        data = (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std))
        self.inits.append(numpy_helper.from_array(data, n))
        return n

    def bias(self, size: int) -> str:
        n = self.name("b")
        self.inits.append(numpy_helper.from_array(np.zeros(size, np.float32), n))
        return n

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int, relu: bool,
             scale: float = 1.0) -> str:
        w = self.weight((cout, cin, k, k), cin * k * k, scale)
        y = self.node("Conv", [x, w, self.bias(cout)], kernel_shape=[k, k],
                      strides=[stride, stride], pads=[k // 2] * 4)
        return self.node("Relu", [y]) if relu else y

    def model(self, name: str, inp: str, shape: list, out: str, out_shape: list) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(inp, TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="hwbench")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def resnet50_v15(seed: int, classes: int = 1000) -> onnx.ModelProto:
    """ResNet50-v1.5 (stride on the 3x3 convolution), 224x224 input, logits output."""
    b = _Builder(seed)
    x = b.conv("input", 3, 64, 7, 2, relu=True)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            y = b.conv(x, cin, width, 1, 1, relu=True)
            y = b.conv(y, width, width, 3, s, relu=True)
            # A small last-layer scale keeps activations bounded through 16 residual additions.
            y = b.conv(y, width, width * 4, 1, 1, relu=False, scale=0.2)
            short = b.conv(x, cin, width * 4, 1, s, relu=False) if i == 0 else x
            x = b.node("Relu", [b.node("Add", [y, short])])
            cin = width * 4
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    w = b.weight((cin, classes), cin)
    x = b.node("Gemm", [x, w, b.bias(classes)])
    b.nodes[-1].output[0] = "logits"
    return b.model("resnet50_v1.5_synthetic", "input", ["N", 3, 224, 224], "logits",
                   ["N", classes])


def mlp(seed: int, inputs: int, hidden: int, outputs: int) -> onnx.ModelProto:
    """A two-hidden-layer perceptron: the tiny workload's model."""
    b = _Builder(seed)
    x = "input"
    for cin, cout, relu in ((inputs, hidden, True), (hidden, hidden, True),
                            (hidden, outputs, False)):
        y = b.node("Gemm", [x, b.weight((cin, cout), cin), b.bias(cout)])
        x = b.node("Relu", [y]) if relu else y
    b.nodes[-1].output[0] = "logits"
    return b.model("tiny_mlp_synthetic", "input", ["N", inputs], "logits", ["N", outputs])
