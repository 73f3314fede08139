"""Trains the ``digits`` workload's CNN and writes its committed artifacts, deterministically.

    pip install '.[train]'          # torch (CPU) and scikit-learn
    python -m hwbench.workloads.digits_train --out hwbench/workloads/data/digits
    python -m hwbench.workloads.digits_train --check   # retrain in a temporary folder, compare

The data are scikit-learn's handwritten digits (1,797 real 8x8 images, labelled, shipped inside
scikit-learn). A seeded, stratified 30% of each class is held out as the reference set. The model
(two 3x3 convolutions, 2x2 max-pool, two dense layers) is trained with torch on one thread with
deterministic algorithms, then written as an ONNX graph built node by node from the trained
weights (no exporter in between). The FP32 reference accuracy in the manifest is measured with
onnxruntime on the written graph, exactly as `hwbench run --workload digits` scores it.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from hwbench.workloads.digits import preprocess

SPLIT_SEED = 2026
TRAIN_SEED = 7
HELD_OUT = 0.3
EPOCHS = 60
BATCH = 32
LR = 2e-3
MODEL_FILE = "digits_cnn.onnx"
DATA_FILE = "digits_reference.npy"
# One uint16 row per reference sample: source index in load_digits, label, then 64 pixels (0..16).
COLUMNS = "source_index, label, pixel[0..63] (row-major 8x8, intensities 0..16)"
MANIFEST = "manifest.json"


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stratified: from each class, a seeded HELD_OUT share goes to the reference set."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, ref = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(HELD_OUT * len(idx)))
        ref.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(ref))


def train(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    import torch
    from torch import nn

    torch.manual_seed(TRAIN_SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10))
    x = torch.from_numpy(preprocess(images))
    y = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), BATCH):
            b = order[s:s + BATCH]
            opt.zero_grad()
            loss_fn(net(x[b]), y[b]).backward()
            opt.step()
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def to_onnx(w: dict[str, np.ndarray]):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hwbench.workloads.graphs import IR_VERSION, OPSET

    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    nodes = [
        helper.make_node("Conv", ["image", "0.weight", "0.bias"], ["c1"], pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "2.weight", "2.bias"], ["c2"], pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "6.weight", "6.bias"], ["d1"], transB=1),
        helper.make_node("Relu", ["d1"], ["r3"]),
        helper.make_node("Gemm", ["r3", "8.weight", "8.bias"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="hwbench digits_train")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def build(out: Path) -> dict:
    import onnx
    import onnxruntime as ort
    from sklearn.datasets import load_digits

    from hwbench.workloads.scoring import score_classification
    from hwbench.workloads.base import sha256_of

    d = load_digits()
    images = np.rint(d.images).astype(np.uint8)  # intensities are whole numbers 0..16
    labels = d.target.astype(np.uint8)
    tr, ref = split(labels)
    weights = train(images[tr], labels[tr])
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(to_onnx(weights), str(out / MODEL_FILE))
    # A plain .npy (header and raw data, no archive timestamps): the bytes are reproducible.
    table = np.concatenate([ref[:, None], labels[ref, None], images[ref].reshape(-1, 64)],
                           axis=1).astype(np.uint16)
    np.save(out / DATA_FILE, table, allow_pickle=False)
    sess = ort.InferenceSession(str(out / MODEL_FILE), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"image": preprocess(images[ref])})[0]
    scores = score_classification(logits, labels[ref].astype(np.int64), 10)
    manifest = {
        "model": {"file": MODEL_FILE, "sha256": sha256_of(out / MODEL_FILE),
                  "input": "image", "input_layout": "NCHW (N, 1, 8, 8) float32 in [0, 1]",
                  "output": "logits", "output_layout": "(N, 10) float32 logits"},
        "reference_set": {"file": DATA_FILE, "sha256": sha256_of(out / DATA_FILE),
                          "columns": COLUMNS, "count": int(len(ref)),
                          "train_count": int(len(tr)),
                          "source": "sklearn.datasets.load_digits (UCI optical digits, 8x8)",
                          "split": f"stratified, {HELD_OUT:.0%} of each class held out, "
                                   f"numpy default_rng({SPLIT_SEED})"},
        "fp32_reference": {"metric": "top1", "value": scores.top1, "ece": scores.ece,
                           "measured_with": f"onnxruntime {ort.__version__} CPU"},
        "training": {"seed": TRAIN_SEED, "epochs": EPOCHS, "batch": BATCH, "lr": LR,
                     "optimizer": "Adam", "threads": 1},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train the digits CNN and write its artifacts.")
    p.add_argument("--out", type=Path, help="folder for the artifacts")
    p.add_argument("--check", action="store_true",
                   help="retrain in a temporary folder and compare with the committed artifacts")
    a = p.parse_args(argv)
    if not a.check and a.out is None:
        p.error("give --out DIR, or --check")
    if a.check:
        committed = json.loads((Path(__file__).parent / "data" / "digits" / MANIFEST).read_text())
        with tempfile.TemporaryDirectory() as tmp:
            fresh = build(Path(tmp))
        same = {k: fresh[k]["sha256"] == committed[k]["sha256"] for k in ("model", "reference_set")}
        print(f"reference set identical: {same['reference_set']}; model identical: "
              f"{same['model']}; top-1 {fresh['fp32_reference']['value']:.4f} "
              f"(committed {committed['fp32_reference']['value']:.4f})")
        return 0 if same["reference_set"] and abs(
            fresh["fp32_reference"]["value"] - committed["fp32_reference"]["value"]) < 0.01 else 1
    m = build(a.out)
    print(f"wrote {a.out}: top-1 {m['fp32_reference']['value']:.4f} on "
          f"{m['reference_set']['count']} held-out digits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
