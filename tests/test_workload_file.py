"""`hwbench run --workload FILE.toml`: a labelled classifier described without code (issue 13,
items 2 and 4). Real components throughout: JPEGs written here, decoded by Pillow, a real ONNX
model through onnxruntime, the CLI in-process."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import FAST, assert_valid_or_load_bound, cli, load_only, run_json
from hwbench.results.identity import comparability_key, config_hash
from workload_files import CLASSES, channel_mean_classifier, image_folder

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The workload file README shows under "Your own workload", as written."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own workload", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, float]:
    """30 photo-like JPEGs (500x375, ~100 KB) in three class folders, 2 per folder of another
    class's colour, beside the classifier: (folder, its exact top-1)."""
    root = tmp_path_factory.mktemp("workload")
    labels, dominant = image_folder(root / "images", per_class=10, misplaced=2)
    channel_mean_classifier(root / "model.onnx")
    return root, float(np.mean(np.array(labels) == np.array(dominant)))


def bgr_top1(root: Path) -> float:
    """The classifier's top-1 when red and blue are swapped: it predicts 2 - dominant."""
    files = sorted((root / "images").rglob("*.jpg"))
    labels = [CLASSES.index(f.parent.name) for f in files]
    return float(np.mean([2 - d == l for d, l in zip(_dominant(files), labels)]))


def _dominant(files: list[Path]) -> list[int]:
    from PIL import Image
    out = []
    for f in files:
        with Image.open(f) as img:
            out.append(int(np.asarray(img, np.float64).mean(axis=(0, 1)).argmax()))
    return out


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_the_photos_look_like_photos(photos):
    root, top1 = photos
    files = sorted((root / "images").rglob("*.jpg"))
    sizes = [f.stat().st_size for f in files]
    assert len(files) == 30 and 70_000 < min(sizes) and max(sizes) < 150_000
    from PIL import Image
    with Image.open(files[0]) as img:
        assert img.size == (500, 375)
    assert top1 == 24 / 30


def readme_command() -> list[str]:
    section = (REPO / "README.md").read_text().split("## Your own workload", 1)[1]
    (line,) = [l.strip() for l in section.split("\n## ")[0].splitlines()
               if l.strip().startswith("hwbench run")]
    return line.split()[1:]


def test_the_readme_example_gives_the_exact_top1(capsys, out_dir, photos, monkeypatch):
    """The README's file and command as written, in the folder holding the images and model."""
    root, top1 = photos
    args = readme_command()
    wfile = write(root, args[args.index("--workload") + 1], readme_example())
    monkeypatch.chdir(root)
    code, doc = run_json(capsys, out_dir, *args[1:], *FAST)
    assert doc["settings"]["config"]["mode"] == "both"
    assert_valid_or_load_bound(code, doc)
    acc = doc["accuracy"]
    assert acc["value"] == top1 and acc["passed"] and acc["count"] == 30
    assert acc["reference"] == 0.7646 and acc["reference_source"].startswith("declared in")
    assert doc["workload"] == "my-classifier" and "-my-classifier-" in doc["run_id"]
    info = doc["workload_info"]
    assert info["workload_file"]["sha256"] == hashlib.sha256(wfile.read_bytes()).hexdigest()
    assert info["workload_file"]["spec"]["preprocess"]["center_crop"] == 224
    assert info["reference_set"]["class_names"] == list(CLASSES)
    assert doc["fidelity"]["passed"]


def test_bgr_fails_a_declared_reference_and_passes_a_measured_one(capsys, out_dir, photos):
    """Item 4's rule: a declared reference catches a wrong preprocessing (exit 3); without it the
    reference is the same model's FP32 accuracy on the same inputs, which sees the same mistake."""
    root, _ = photos
    bgr = readme_example().replace('color = "RGB"', 'color = "BGR"')
    assert 'color = "BGR"' in bgr
    # Red and blue swap: the green images in the green folder, and the red ones in the blue
    # folder, are right: 10 of 30.
    want = bgr_top1(root)
    assert want == 10 / 30
    code, doc = run_json(capsys, out_dir / "declared", "--workload",
                         str(write(root, "bgr.toml", bgr)), "--mode", "both", *FAST)
    acc = doc["accuracy"]
    assert code == 3 and acc["value"] == want and not acc["passed"]
    assert load_only(doc["invalid_reasons"]) == [
        f"accuracy top1 {acc['value']:.4f} is below the target {acc['target']:.4f}"]
    measured = bgr.split("[accuracy]")[0]
    code, doc = run_json(capsys, out_dir / "measured", "--workload",
                         str(write(root, "bgr-measured.toml", measured)), "--mode", "accuracy")
    acc = doc["accuracy"]
    assert code == 0 and acc["passed"] and acc["value"] == acc["reference"] == want
    assert acc["reference_source"].startswith("measured: this model's FP32 accuracy on the "
                                              "same 30 samples")
    assert acc["target"] == pytest.approx(0.99 * want)


def test_a_list_with_class_names_a_background_class_and_probabilities(capsys, out_dir, photos,
                                                                       tmp_path):
    """CSV list, classes in another order than the folders (a class-names file), a model with a
    background column first and a softmax output, NHWC input and scale instead of mean/std."""
    root, top1 = photos
    files = sorted((root / "images").rglob("*.jpg"))
    order = ["blue", "red", "green"]  # the model's output order, after its background class
    lines = ["path,label"] + [f"{f.relative_to(root)},{f.parent.name.split('-')[1]}" for f in files]
    write(root, "list.csv", "\n".join(lines) + "\n")
    write(root, "classes.txt", "\n".join(order) + "\n")
    model = tmp_path / "bg.onnx"
    _background_model(model, [2, 0, 1])  # output 1+k is RGB channel [2, 0, 1][k]
    wfile = write(root, "list.toml", f'''name = "listed"
model = "{model}"
[dataset]
path = "list.csv"
layout = "list"
[preprocess]
resize_shorter = 256
center_crop = 224
scale = 0.00392156862745098
layout = "NHWC"
[output]
kind = "probabilities"
class_offset = 1
class_names = "classes.txt"
''')
    code, doc = run_json(capsys, out_dir, "--workload", str(wfile), "--mode", "accuracy")
    acc = doc["accuracy"]
    assert code == 0 and acc["value"] == top1 and acc["reference"] == top1
    assert doc["workload_info"]["reference_set"]["class_names"] == order
    assert 0 <= acc["ece"] <= 1


def test_a_jsonl_list_and_pillow_bilinear_give_the_same_answers(capsys, out_dir, photos):
    root, top1 = photos
    files = sorted((root / "images").rglob("*.jpg"))
    rows = [json.dumps({"path": str(f.relative_to(root)), "label": CLASSES.index(f.parent.name)})
            for f in files]
    write(root, "list.jsonl", "\n".join(rows) + "\n")
    text = readme_example().replace('path = "images"\nlayout = "imagefolder"',
                                    'path = "list.jsonl"\nlayout = "list"')
    text = text.replace("center_crop = 224", 'center_crop = 224\ninterpolation = "bilinear"')
    code, doc = run_json(capsys, out_dir, "--workload", str(write(root, "jsonl.toml", text)),
                         "--mode", "accuracy")
    assert code == 0 and doc["accuracy"]["value"] == top1
    spec = doc["workload_info"]["workload_file"]["spec"]
    assert spec["preprocess"]["interpolation"] == "bilinear"


def test_preprocessing_is_the_documented_arithmetic():
    """(pixel - mean) / std on 0..255 values in the file's channel order, or pixel x scale;
    NCHW or NHWC; float32."""
    from hwbench.workloads.described import to_model_input
    from hwbench.workloads.workfile import PreprocessSpec

    pixels = np.random.default_rng(1).integers(0, 256, (2, 4, 5, 3))
    images = (pixels / 255.0).astype(np.float32)
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 8.0)
    got = to_model_input(images, PreprocessSpec(center_crop=4, mean=mean, std=std, color="BGR"))
    want = ((pixels[..., ::-1] - np.array(mean)) / np.array(std)).transpose(0, 3, 1, 2)
    assert got.dtype == np.float32 and got.shape == (2, 3, 4, 5)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-5)
    got = to_model_input(images, PreprocessSpec(center_crop=4, scale=1 / 255, layout="NHWC"))
    assert got.shape == (2, 4, 5, 3) and np.allclose(got, pixels / 255, atol=1e-7)


def test_area_resize_and_crop_match_opencv_at_another_geometry(photos):
    """The file's area resize is OpenCV's INTER_AREA (MLPerf's), at any shorter side and crop."""
    cv2 = pytest.importorskip("cv2")
    from hwbench.workloads import imagenet
    from hwbench.workloads.described import load_image
    from hwbench.workloads.workfile import PreprocessSpec

    root, _ = photos
    path = sorted((root / "images").rglob("*.jpg"))[0]
    rgb = imagenet.decode(path)
    ours = load_image(rgb, PreprocessSpec(resize_shorter=146, center_crop=128), path)
    h, w = rgb.shape[:2]
    size = imagenet.resized_size(w, h, 146)
    big = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    top, left = int((size[1] - 128) / 2), int((size[0] - 128) / 2)
    ref = big[top:top + 128, left:left + 128]
    assert ours.shape == (128, 128, 3)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def _background_model(path: Path, channels: list[int]) -> None:
    """NHWC (pixel x 1/255) -> softmax over [background, channel means in `channels` order]."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((3, 4), np.float32)
    for k, c in enumerate(channels):
        w[c, 1 + k] = 20.0
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
         helper.make_node("GlobalAveragePool", ["t"], ["p"]),
         helper.make_node("Flatten", ["p"], ["m"]),
         helper.make_node("MatMul", ["m", "w"], ["z"]),
         helper.make_node("Softmax", ["z"], ["probs"], axis=1)],
        "background", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 224, 224, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, 4])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def test_an_npz_of_model_inputs(capsys, out_dir, tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 40)
    x = rng.normal(0, 0.3, (40, 3, 8, 8)).astype(np.float32)
    x[np.arange(40), labels] += 1.0  # the labelled channel dominates...
    wrong = [1, 5, 9]
    x[wrong, (labels[wrong] + 1) % 3] += 3.0  # ...except in three
    np.savez(tmp_path / "set.npz", inputs=x, labels=labels)
    channel_mean_classifier(tmp_path / "m.onnx", side=8)
    wfile = write(tmp_path, "n.toml", 'name = "n"\nmodel = "m.onnx"\n[dataset]\npath = "set.npz"\n'
                  'layout = "npz"\n')
    code, doc = run_json(capsys, out_dir, "--workload", str(wfile), "--mode", "accuracy",
                         "--robustness")
    assert code == 0 and doc["accuracy"]["value"] == 37 / 40
    assert doc["robustness"] is None and "holds model inputs" in doc["robustness_note"]


def _bad(tmp_path: Path, photos, case: str) -> tuple[Path, str]:
    """A workload file (and data) with one mistake, and what its error must say."""
    root, _ = photos
    text = readme_example().replace('"model.onnx"', f'"{root / "model.onnx"}"')
    images = tmp_path / "images"
    shutil.copytree(root / "images", images)
    if case == "missing key":
        text, want = text.replace(f'model = "{root / "model.onnx"}"\n', ""), "has no 'model'"
    elif case == "unknown layout":
        text, want = text.replace('"imagefolder"', '"folders"'), "layout = 'folders' is not known"
    elif case == "unknown key":
        text, want = text.replace("[output]\n", "[output]\nkinds = 1\n"), "unknown key 'kinds'"
    elif case == "empty class folder":
        (images / "3-none").mkdir()
        (images / "3-none" / "notes.txt").write_text("no images here")
        want = "class folder holds no images"
    elif case == "undecodable image":
        (images / "1-green" / "img004.jpg").write_bytes(b"\xff\xd8\xff not a jpeg" * 20)
        want = "img004.jpg: the image will not decode"
    elif case == "mismatch":
        text, want = text.replace("center_crop = 224", "center_crop = 200"), "the model takes"
    elif case == "layout mismatch":
        text, want = text.replace('layout = "NCHW"', 'layout = "NHWC"'), "the model takes"
    elif case == "mean and scale":
        text, want = text.replace("[output]", "scale = 0.5\n[output]"), "both given"
    elif case == "bad toml":
        text, want = text + "oops = [\n", "not valid TOML"
    return write(tmp_path, "bad.toml", text), want


@pytest.mark.parametrize("case", ["missing key", "unknown layout", "unknown key",
                                  "empty class folder", "undecodable image", "mismatch",
                                  "layout mismatch", "mean and scale", "bad toml"])
def test_a_bad_file_or_data_exits_2_with_one_line_and_writes_nothing(capsys, out_dir, tmp_path,
                                                                     photos, case):
    wfile, want = _bad(tmp_path, photos, case)
    code, out, err = cli(capsys, "run", "--workload", str(wfile), "--mode", "accuracy",
                         "--output", str(out_dir))
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("hwbench: pre")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hwbench: error: "), err
    assert want in lines[0] and "Traceback" not in err
    assert not out_dir.exists()
    cache = Path(os.environ["HWBENCH_CACHE"]) / "workloads"  # no half-built image cache
    assert not [f for f in cache.glob("*") if ".tmp" in f.name] if cache.exists() else True


def test_dataset_is_refused_beside_a_workload_file_and_model_replaces_its_model(
        capsys, out_dir, photos, tmp_path):
    root, top1 = photos
    wfile = write(root, "over.toml", readme_example().replace('"model.onnx"', '"absent.onnx"'))
    code, _, err = cli(capsys, "run", "--workload", str(wfile), "--dataset", str(root),
                       "--output", str(out_dir))
    assert code == 2 and "drop --dataset" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "run", "--workload", str(wfile), "--output", str(out_dir))
    assert code == 2 and "absent.onnx not found: set model in" in err
    code, doc = run_json(capsys, out_dir, "--workload", str(wfile), "--model",
                         str(root / "model.onnx"), "--mode", "accuracy")
    assert code == 0 and doc["accuracy"]["value"] == top1


def test_runs_of_two_files_never_compare_as_one():
    def doc(sha: str | None) -> dict:
        info = {"model_sha256": "m"}
        if sha:
            info["workload_file"] = {"sha256": sha}
        return {"workload": "w", "scenario": "offline", "mode": "performance",
                "workload_info": info, "settings": {"config": {}, "loadgen": {}}}
    assert config_hash(doc("a")) != config_hash(doc("b"))
    assert "workload_file_sha256" not in comparability_key(doc(None))  # built-ins: as before


def test_list_names_the_workload_file(capsys):
    code, out, _ = cli(capsys, "list")
    assert code == 0 and "FILE.toml" in out and "Your own workload" in out


def test_robustness_on_a_workload_file(capsys, out_dir, photos):
    root, _ = photos
    wfile = write(root, "robust.toml", readme_example())
    code, doc = run_json(capsys, out_dir, "--workload", str(wfile), "--mode", "accuracy",
                         "--robustness", "--robustness-samples", "6")
    rob = doc["robustness"]
    assert code == 0 and rob["samples"] == 6 and len(rob["corruptions"]) == 10
    from hwbench.quality.robustness import sample_indices

    files = sorted((root / "images").rglob("*.jpg"))
    right = np.array(_dominant(files)) == [CLASSES.index(f.parent.name) for f in files]
    assert rob["clean_accuracy"] == float(right[sample_indices(30, 6, 1)].mean())


def test_history_and_compare_take_the_workload_file_for_its_name(capsys, out_dir, photos):
    root, _ = photos
    wfile = write(root, "hist.toml", readme_example())
    for _ in range(2):
        code, _ = run_json(capsys, out_dir, "--workload", str(wfile), "--mode", "accuracy")
        assert code == 0
    code, out, err = cli(capsys, "history", "--root", str(out_dir), "--workload", str(wfile))
    assert code == 0 and "History: my-classifier / offline" in out, err
    # compare finds both runs by the file's name (and then refuses accuracy-only runs)
    code, out, err = cli(capsys, "compare", "--root", str(out_dir), "--workload", str(wfile))
    assert "my-classifier" in err and "no runs" not in err and "not comparable" in err


def test_probabilities_are_calibrated_as_given():
    """kind = "probabilities": calibration reads them without a softmax, even when a dropped
    background column leaves rows that do not sum to 1."""
    from hwbench.workloads.scoring import expected_calibration_error, score_classification

    p = np.array([[0.7, 0.2, 0.05], [0.1, 0.6, 0.2]])
    labels = np.array([0, 2])
    s = score_classification(p, labels, 3, probabilities=True)
    assert s.top1 == 0.5 and s.ece == expected_calibration_error(p, labels)
    assert s.ece != score_classification(np.log(p), labels, 3).ece
