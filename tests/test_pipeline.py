"""``--pipeline``: the whole pipeline (decode, preprocess, batching, backend, top-k) as the timed
path, its stage times in samples.npz, and its comparison with the model alone. Real parts
throughout: the embedded digits (its reference set as PNG files), photo-like JPEGs in MLPerf's
ImageNet layout, onnxruntime on the CPU, the compiled load generator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli_helpers import FAST, cli, load_only, run_json
from hwbench.results import pipeline as section
from hwbench.workloads import create, workfile
from hwbench.workloads.described import Described
from hwbench.workloads.digits import Digits
from workload_files import channel_mean_classifier, image_folder

STAGE_COLUMNS = [f"{s}_ns" for s in section.STAGES]


def _samples(doc: dict, out_dir: Path, name: str = "samples.npz") -> dict[str, np.ndarray]:
    with np.load(out_dir / doc["run_id"] / name) as z:
        return {k: z[k] for k in z.files}


def _imagenet(root: Path, n: int = 12) -> Path:
    """n photo-like JPEGs of ImageNet's common sizes in MLPerf's layout (val_map.txt)."""
    from PIL import Image

    from workload_files import photo

    rng = np.random.default_rng(5)
    root.mkdir(parents=True)
    lines = []
    for i in range(n):
        w, h = (500, 375) if i % 3 else (375, 500)
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        Image.fromarray(photo(rng, i % 3, w, h)).save(root / name, quality=90)
        lines.append(f"{name} {i % 3}\n")
    (root / "val_map.txt").write_text("".join(lines))
    return root


def test_each_stage_path_gives_exactly_the_model_only_samples(tmp_path):
    """The contract: preprocess_sample(decode_sample(file)) is load_samples' input, bit for bit,
    for each workload with encoded files."""
    digits = create("digits", None, None, 1)
    root = _imagenet(tmp_path / "val")
    model = tmp_path / "m.onnx"
    _imagenet_classifier(model)
    resnet = create("resnet50", str(model), str(root), 1)
    folder = tmp_path / "wf"
    image_folder(folder / "images", per_class=2, misplaced=0)
    channel_mean_classifier(folder / "model.onnx")
    (folder / "w.toml").write_text('name = "w"\nmodel = "model.onnx"\n[dataset]\npath = "images"\n'
                                   'layout = "imagefolder"\n[preprocess]\nresize_shorter = 256\n'
                                   'center_crop = 224\nmean = [123.675, 116.28, 103.53]\n'
                                   'std = [58.395, 57.12, 57.375]\n')
    described = Described(workfile.load(folder / "w.toml"))
    for w in (digits, resnet, described):
        assert w.encoded_unavailable() is None
        idx = np.arange(min(6, w.sample_count()))
        files = w.encoded_samples(idx)
        x = np.stack([w.preprocess_sample(w.decode_sample(f)) for f in files])
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, w.load_samples(idx), err_msg=w.name)


def _imagenet_classifier(path: Path) -> None:
    """GlobalAveragePool + Gemm over 3x224x224 to 1000 classes (an ImageNet geometry)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(0, 0.05, (3, 1000)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
         helper.make_node("Flatten", ["g"], ["f"], axis=1),
         helper.make_node("Gemm", ["f", "W", "B"], ["y"])], "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1000])],
        initializer=[numpy_helper.from_array(w, "W"),
                     numpy_helper.from_array(np.zeros(1000, np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_postprocess_is_the_top_classes_best_first():
    w = create("digits", None, None, 1)
    rows = np.array([[0, 9, 1, 8, 2, 7, 3, 6, 4, 5]], np.float32)
    assert w.postprocess(rows).tolist() == [[1, 3, 5, 7, 9]]


def test_full_pipeline_times_every_stage_and_scores_its_own_outputs(capsys, out_dir):
    """digits from PNG files in memory: accuracy is the embedded model's exactly (the timed
    path's outputs scored), and each completed sample's stages add up to its latency."""
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "cpu",
                         "--pipeline", "full", "--mode", "both", "--scenario", "single-stream",
                         "--preprocess-workers", "2", *FAST)
    assert code in (0, 3) and not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    acc = doc["accuracy"]
    assert acc["passed"] and acc["value"] == acc["reference"]  # the embedded model's own top-1
    p = doc["pipeline"]
    assert p["answers_top1"] == acc["value"]  # the post-processed answers are what was scored
    assert p["mode"] == "full" and p["model_only"] is None and p["throughput_ratio"] is None
    assert p["end_to_end"]["samples_per_second"] == doc["metrics"]["samples_per_second"]
    assert set(p["stages_ms"]) == set(section.STAGES)
    assert set(p["utilisation"]) == {"decode", "preprocess", "compute", "postprocess"}
    assert p["bound_by"] in p["utilisation"]
    s = _samples(doc, out_dir)
    done = s["complete_ns"] >= 0
    assert done.all() and set(STAGE_COLUMNS) <= set(s)
    spent = sum(s[c] for c in STAGE_COLUMNS)
    assert (np.stack([s[c] for c in STAGE_COLUMNS]) >= 0).all()
    # The harness's stamps lie between the load generator's issue and completion stamps.
    assert (spent <= s["complete_ns"] - s["issue_ns"]).all()
    assert (s["batch"] >= 0).all()
    acc_samples = _samples(doc, out_dir, "samples_accuracy.npz")
    assert set(STAGE_COLUMNS) <= set(acc_samples)
    text = (out_dir / doc["run_id"] / "summary.txt").read_text()
    assert "end-to-end" in text and f"bound by {p['bound_by']}" in text


def test_both_compares_the_two_paths_on_the_same_samples(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "cpu",
                         "--pipeline", "both", "--scenario", "offline", *FAST)
    assert code in (0, 3) and not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    p = doc["pipeline"]
    e, m = p["end_to_end"], p["model_only"]
    assert p["mode"] == "both" and e and m and p["throughput_basis"] == "samples_per_second"
    assert p["throughput_ratio"] == pytest.approx(e["samples_per_second"]
                                                  / m["samples_per_second"])
    assert p["p99_delta_ms"] == pytest.approx(e["latency_ms"]["p99"] - m["latency_ms"]["p99"])
    model_only = _samples(doc, out_dir, "samples_model_only.npz")
    full = _samples(doc, out_dir)
    assert not set(STAGE_COLUMNS) & set(model_only) and set(STAGE_COLUMNS) <= set(full)
    line = section.summary_line(p)
    assert line.startswith(f"end-to-end delivers {p['throughput_ratio']:.0%} of model-only")
    assert line in (out_dir / doc["run_id"] / "summary.txt").read_text()


def test_a_decode_slowed_on_purpose_is_what_the_pipeline_is_bound_by(capsys, out_dir,
                                                                     monkeypatch):
    """Decoding each digit's PNG 300 times (real work, in place of a large JPEG) makes decode
    the busiest stage: the section must say so."""
    real = Digits.decode_sample

    def slow(self, data: bytes) -> np.ndarray:
        for _ in range(299):
            real(self, data)
        return real(self, data)

    monkeypatch.setattr(Digits, "decode_sample", slow)
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "cpu",
                         "--pipeline", "full", "--scenario", "offline",
                         "--preprocess-workers", "1", *FAST)
    p = doc["pipeline"]
    assert p["bound_by"] == "decode", p["utilisation"]
    assert p["stages_ms"]["decode"]["mean"] > p["stages_ms"]["preprocess"]["mean"]


def test_utilisation_counts_a_batch_once_and_waiting_never():
    """Arithmetic on planted columns: two samples share one 4 ms backend call; the window is
    10 ms; two preprocessing workers, one compute worker."""
    ms = 1_000_000
    cols = {"issue_ns": np.array([0, 0]), "complete_ns": np.array([10 * ms, 10 * ms]),
            "queue_ns": np.array([5 * ms, 5 * ms]), "decode_ns": np.array([2 * ms, 4 * ms]),
            "preprocess_ns": np.array([1 * ms, 1 * ms]), "batch_wait_ns": np.array([0, 0]),
            "compute_ns": np.array([4 * ms, 4 * ms]), "postprocess_ns": np.array([1 * ms, 1 * ms]),
            "batch": np.array([0, 0])}
    u = section.utilisation(cols, {"preprocess_workers": 2, "instances": 1})
    assert u == pytest.approx({"decode": 0.3, "preprocess": 0.1, "compute": 0.4,
                               "postprocess": 0.1})
    p = section.section("full", cols, {"preprocess_workers": 2, "instances": 1}, None, None)
    assert p["bound_by"] == "compute" and p["stages_ms"]["decode"]["mean"] == 3.0


@pytest.mark.parametrize("args, expect", [
    (["--workload", "tiny", "--pipeline", "full"], "tiny has no encoded image files"),
    (["--workload", "resnet50", "--pipeline", "both"], "need --dataset"),
    (["--workload", "digits", "--pipeline", "both", "--scenario", "server"],
     "add --mode find-peak"),
    (["--workload", "digits", "--pipeline", "full", "--preprocess-workers", "0"],
     "--preprocess-workers must be >= 1"),
])
def test_a_pipeline_that_cannot_run_is_exit_2_with_the_fix(capsys, out_dir, args, expect):
    code, out, err = cli(capsys, "run", "--quiet", "--output", str(out_dir), "--backend", "null",
                         *args, *FAST)
    assert code == 2 and expect in err and len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_a_failing_decode_invalidates_the_run_and_keeps_what_was_measured(capsys, out_dir,
                                                                          monkeypatch):
    """A corrupt file met on the timed path: the run is invalid with the stage's error."""
    real = Digits.decode_sample
    seen = []

    def breaks(self, data: bytes) -> np.ndarray:
        seen.append(1)
        if len(seen) > 30:
            return real(self, b"not a png" + data[:4])
        return real(self, data)

    monkeypatch.setattr(Digits, "decode_sample", breaks)
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "cpu",
                         "--pipeline", "full", "--scenario", "single-stream", *FAST)
    assert code == 3 and not doc["valid"]
    assert any("failed in preprocessing" in r for r in doc["invalid_reasons"]), \
        doc["invalid_reasons"]
    assert doc["pipeline"]["mode"] == "full"


def test_runs_of_two_pipelines_never_compare_as_one():
    from hwbench.results.identity import comparability_key

    doc = {"settings": {"config": {"pipeline": "model"}}, "workload": "digits"}
    full = {"settings": {"config": {"pipeline": "full"}}, "workload": "digits"}
    old = {"settings": {"config": {}}, "workload": "digits"}
    assert comparability_key(doc) == comparability_key(old) != comparability_key(full)


def test_resnet50_full_pipeline_on_jpegs(capsys, out_dir, tmp_path):
    """resnet50 from JPEG bytes: the timed path's accuracy equals the model-only path's."""
    root = _imagenet(tmp_path / "val", n=9)
    model = tmp_path / "m.onnx"
    _imagenet_classifier(model)
    code, doc = run_json(capsys, out_dir, "--workload", "resnet50", "--model", str(model),
                         "--dataset", str(root), "--backend", "cpu", "--pipeline", "full",
                         "--mode", "accuracy", "--scenario", "offline")
    assert not load_only(doc["invalid_reasons"]), doc["invalid_reasons"]
    ref = doc["accuracy"]
    assert ref["count"] == 9 and ref["value"] == ref["reference"]  # the FP32 model's own
    assert doc["pipeline"]["stages_ms"]["decode"]["mean"] > 0


def test_an_audit_refuses_a_pipeline_it_would_not_run(capsys, out_dir):
    code, out, err = cli(capsys, "audit", "--workload", "digits", "--backend", "null",
                         "--pipeline", "full", "--output", str(out_dir))
    assert code == 2 and "drop --pipeline" in err and len(err.strip().splitlines()) == 1, err


def test_the_report_shows_where_the_time_goes(capsys, out_dir, tmp_path):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "cpu",
                         "--pipeline", "both", "--scenario", "single-stream", *FAST)
    out = tmp_path / "r.html"
    code, _, err = cli(capsys, "report", str(out_dir / doc["run_id"]), "--out", str(out))
    assert code == 0, err
    page = out.read_text()
    part = page.split("<h2>Whole pipeline</h2>", 1)[1].split("<h2>", 1)[0]
    assert section.summary_line(doc["pipeline"]) in part.replace("&#x27;", "'")
    assert "model-only" in part and "end-to-end" in part and "batch_wait" in part
    assert part.count("<svg") == 1 and "time per stage" in part
