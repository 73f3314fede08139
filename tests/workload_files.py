"""Builders for workload-file tests: photo-like JPEGs in class folders, and a classifier whose
accuracy on them is known exactly (it predicts an image's dominant colour channel)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

CLASSES = ("0-red", "1-green", "2-blue")  # sorted folder order = the model's output order
MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def photo(rng: np.random.Generator, dominant: int, width: int = 500, height: int = 375
          ) -> np.ndarray:
    """uint8 RGB: smooth gradients, a few shapes with hard edges and a mild grain, one channel
    well above the others over the whole image (what the classifier reads)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        base = 170.0 if c == dominant else 70.0
        a, b = rng.uniform(-40, 40, 2)
        img[..., c] = base + a * xx / width + b * yy / height
    for _ in range(int(rng.integers(3, 6))):  # shapes: edges a photo has
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(20, 90, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        img[inside] += rng.uniform(-30, 30, 3).astype(np.float32)
    for _ in range(600):  # small detail (leaves, pebbles): edges everywhere, as photos have
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        r = int(rng.integers(3, 14))
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r, height), max(cx - r, 0), min(cx + r, width)
        patch = (yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2 <= r * r
        img[y0:y1, x0:x1][patch] += rng.uniform(-35, 35, 3).astype(np.float32)
    # texture: a few sinusoids and smoothed grain, as foliage or fabric give
    for _ in range(3):
        f = rng.uniform(0.05, 0.4, 2)
        img += (8 * np.sin(f[0] * xx + f[1] * yy + rng.uniform(0, 6)))[..., None]
    grain = rng.standard_normal((height // 2 + 1, width // 2 + 1, 3)).astype(np.float32)
    img += 12 * np.kron(grain, np.ones((2, 2, 1), np.float32))[:height, :width]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray, quality: int = 93) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def image_folder(root: Path, per_class: int = 10, misplaced: int = 2, seed: int = 0
                 ) -> tuple[list[int], list[int]]:
    """Writes ``root/<class>/*.jpg``; in each folder the last `misplaced` images are of the next
    class's colour. Returns (labels, dominant channels) in the sorted order of the files."""
    rng = np.random.default_rng(seed)
    labels, dominant = [], []
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            colour = (label + 1) % 3 if i >= per_class - misplaced else label
            (folder / f"img{i:03d}.jpg").write_bytes(jpeg_bytes(photo(rng, colour)))
            labels.append(label)
            dominant.append(colour)
    return labels, dominant


def channel_mean_classifier(path: Path, side: int = 224, layout: str = "NCHW",
                            softmax: bool = False) -> None:
    """An ONNX model over (pixel - MEAN) / STD inputs: the mean of each channel, back on the
    0..255 scale, as the three class scores (RGB order). Its top-1 is the dominant channel."""
    shape = [None, 3, side, side] if layout == "NCHW" else [None, side, side, 3]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])
    nodes, inits = [], [numpy_helper.from_array(np.diag(STD).astype(np.float32), "w"),
                        numpy_helper.from_array(np.array(MEAN, np.float32), "b")]
    src = "image"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
        src = "nchw"
    nodes += [helper.make_node("GlobalAveragePool", [src], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["means"]),
              helper.make_node("Gemm", ["means", "w", "b"], ["logits" if softmax else "scores"])]
    if softmax:  # scores / 10 through a softmax: calibrated-looking probabilities
        inits.append(numpy_helper.from_array(np.array(0.1, np.float32), "t"))
        nodes += [helper.make_node("Mul", ["logits", "t"], ["scaled"]),
                  helper.make_node("Softmax", ["scaled"], ["scores"], axis=1)]
    graph = helper.make_graph(nodes, "channel_means", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
