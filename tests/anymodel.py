"""A small but real transformer-like ONNX model for ``--workload onnx``: two int64 inputs with
dynamic batch and sequence dimensions (``input_ids``, ``attention_mask``), an embedding Gather,
one masked self-attention layer, a masked mean pool and two outputs: float ``logits`` and the
int64 ``label`` (their argmax). Seeded weights; every op runs on onnxruntime, OpenVINO and the
torch backend's converter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, WIDTH, CLASSES = 50, 16, 4


def build(seed: int = 3) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = {"emb": w(VOCAB, WIDTH, scale=1.0), "wq": w(WIDTH, WIDTH), "wk": w(WIDTH, WIDTH),
             "wv": w(WIDTH, WIDTH), "w1": w(WIDTH, WIDTH), "wc": w(WIDTH, CLASSES),
             "bc": w(CLASSES), "scale": np.array(WIDTH ** -0.5, np.float32),
             "one": np.array(1.0, np.float32), "neg": np.array(-1e4, np.float32),
             "ax1": np.array([1], np.int64), "ax2": np.array([2], np.int64)}
    n = helper.make_node
    nodes = [
        n("Gather", ["emb", "input_ids"], ["h"]),  # [b, s, d]
        n("MatMul", ["h", "wq"], ["q"]), n("MatMul", ["h", "wk"], ["k"]),
        n("MatMul", ["h", "wv"], ["v"]),
        n("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        n("MatMul", ["q", "kt"], ["qk"]), n("Mul", ["qk", "scale"], ["scores"]),
        n("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),  # [b, s]
        n("Unsqueeze", ["m", "ax1"], ["m_keys"]),  # [b, 1, s]
        n("Sub", ["one", "m_keys"], ["pad"]), n("Mul", ["pad", "neg"], ["bias"]),
        n("Add", ["scores", "bias"], ["masked"]),
        n("Softmax", ["masked"], ["attn"], axis=-1),
        n("MatMul", ["attn", "v"], ["ctx"]), n("Add", ["h", "ctx"], ["h2"]),
        n("MatMul", ["h2", "w1"], ["h3a"]), n("Tanh", ["h3a"], ["h3"]),
        n("Unsqueeze", ["m", "ax2"], ["m_tok"]),  # [b, s, 1]
        n("Mul", ["h3", "m_tok"], ["kept"]),
        n("ReduceSum", ["kept", "ax1"], ["summed"], keepdims=0),  # [b, d]
        n("ReduceSum", ["m_tok", "ax1"], ["count"], keepdims=0),  # [b, 1]
        n("Div", ["summed", "count"], ["pooled"]),
        n("MatMul", ["pooled", "wc"], ["lin"]), n("Add", ["lin", "bc"], ["logits"]),
        n("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])
    graph = helper.make_graph(nodes, "tiny-encoder", [ids, mask], [logits, label],
                              initializer=[numpy_helper.from_array(v, k)
                                           for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save(path: Path, seed: int = 3) -> Path:
    onnx.save(build(seed), str(path))
    return path


def tokens(n: int, seq: int, seed: int = 5) -> dict[str, np.ndarray]:
    """`n` real-looking samples: ids below the vocabulary, right-padded masks."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, seq + 1, n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(0, VOCAB, (n, seq)) * mask
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask}


def mixed(path: Path) -> Path:
    """A model of every input kind hwbench feeds: ``pixels`` float16 ``[batch, 4]``, ``ids``
    int32 ``[batch, 3]`` (an embedding Gather of a 7-row table), ``flags`` bool ``[batch, n]``;
    outputs ``y`` float16 and ``positive`` bool."""
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((7, 4)).astype(np.float16)
    n = helper.make_node
    nodes = [n("Gather", ["emb", "ids"], ["e"]),
             n("ReduceSum", ["e", "ax1"], ["pooled"], keepdims=0),
             n("Cast", ["flags"], ["f"], to=TensorProto.FLOAT16),
             n("ReduceSum", ["f", "ax1"], ["nflags"], keepdims=1),
             n("Add", ["pixels", "pooled"], ["s"]), n("Add", ["s", "nflags"], ["y"]),
             n("Greater", ["y", "zero"], ["positive"])]
    graph = helper.make_graph(
        nodes, "mixed",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT16, ["batch", 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", 3]),
         helper.make_tensor_value_info("flags", TensorProto.BOOL, ["batch", "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 4]),
         helper.make_tensor_value_info("positive", TensorProto.BOOL, ["batch", 4])],
        initializer=[numpy_helper.from_array(emb, "emb"),
                     numpy_helper.from_array(np.array([1], np.int64), "ax1"),
                     numpy_helper.from_array(np.array(0, np.float16), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
