"""``hwbench run --workload onnx --model M.onnx``: any ONNX model, every input fed (issue 13, item
1). Real components throughout: a transformer-like model with two int64 inputs of dynamic batch
and sequence (tests/anymodel.py) run by onnxruntime, OpenVINO and torch, the CLI in-process."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from anymodel import VOCAB, mixed, save, tokens
from cli_helpers import FAST, assert_valid_or_load_bound, cli, run_json
from hwbench import workloads
from hwbench.artifacts import named_tensors

SEQ = 12
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save(tmp_path_factory.mktemp("anymodel") / "encoder.onnx")


def _run(capsys, out: Path, model: Path, *args: str) -> tuple[int, dict]:
    return run_json(capsys, out, "--workload", "onnx", "--model", str(model),
                    "--input-shape", f"input_ids={SEQ}", "--input-shape",
                    f"attention_mask={SEQ}", *args)


@pytest.mark.parametrize("scenario", ["single-stream", "multi-stream", "offline", "server"])
def test_two_int64_inputs_with_dynamic_batch_and_sequence_run_in_every_scenario(
        capsys, tmp_path, model, scenario):
    code, doc = _run(capsys, tmp_path, model, "--scenario", scenario, "--batch-size", "4",
                     *FAST)
    assert_valid_or_load_bound(code, doc)
    assert doc["metrics"]["completed_samples"] >= 20
    f = doc["fidelity"]
    assert f["passed"] and f["observed_precision"] == "fp32"
    assert f["outputs"]["logits"]["kind"] == "float"
    assert f["outputs"]["logits"]["max_rel_error"] <= 1e-5
    assert f["outputs"]["label"] == {"kind": "exact", "samples": 32, "exact_match": 1.0,
                                     "element_match": 1.0}
    tensors = doc["workload_info"]["inputs"]["tensors"]
    assert tensors == [{"name": "input_ids", "dtype": "int64", "shape": [SEQ]},
                       {"name": "attention_mask", "dtype": "int64", "shape": [SEQ]}]
    assert doc["schema_version"] == 14


def test_workers_and_dynamic_batching_gather_the_records(capsys, tmp_path, model):
    """Two workers and a batch timeout: batches formed by the worker pool's queue."""
    code, doc = _run(capsys, tmp_path, model, "--scenario", "server", "--batch-size", "4",
                     "--instances", "2", "--batch-timeout-us", "200", *FAST)
    assert_valid_or_load_bound(code, doc)
    assert doc["backend_info"]["concurrency"]["workers"] == 2
    assert doc["fidelity"]["outputs"]["label"]["exact_match"] == 1.0


def test_an_fp16_artifact_is_judged_on_its_float_output(capsys, tmp_path, model):
    """--precision fp16 converts the two-input graph; fidelity measures the model's own fp16
    envelope on the records and judges the logits by it."""
    code, doc = _run(capsys, tmp_path, model, "--scenario", "offline", "--batch-size", "8",
                     "--precision", "fp16", *FAST)
    assert_valid_or_load_bound(code, doc)
    f = doc["fidelity"]
    assert f["passed"] and f["observed_precision"] == "fp16"
    assert f["envelope"]["measured_error"]["fp16"] > 0
    assert f["max_rel_error"] == f["outputs"]["logits"]["max_rel_error"] > 1e-5


def test_synthetic_inputs_behave_like_tokens(model):
    """Ids index the embedding table (below its size), masks are right-padded with at least one
    token, and sample i is the same whichever others are loaded."""
    w = workloads.create("onnx", str(model), input_shapes=(("input_ids", (SEQ,)),
                                                           ("attention_mask", (SEQ,))))
    batch = w.load_samples(np.arange(64))
    assert batch.dtype.names == ("input_ids", "attention_mask")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape == (64, SEQ) and ids.dtype == mask.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < VOCAB and len(np.unique(ids)) > VOCAB // 2
    assert set(np.unique(mask)) == {0, 1} and (mask[:, 0] == 1).all()
    assert (np.diff(mask, axis=1) <= 0).all()  # ones then zeros
    assert len(np.unique(mask.sum(axis=1))) > 3  # lengths vary
    again = w.load_samples(np.array([40, 3]))
    assert again.tobytes() == batch[[40, 3]].tobytes()


def test_the_batch_splits_into_the_named_tensors_the_model_takes(model):
    import onnxruntime as ort

    w = workloads.create("onnx", str(model), input_shapes=(("input_ids", (SEQ,)),
                                                           ("attention_mask", (SEQ,))))
    batch = w.load_samples(np.arange(5))
    feeds = named_tensors(batch, w.artifact().input_names)
    assert all(v.flags.c_contiguous and v.shape == (5, SEQ) for v in feeds.values())
    logits, label = ort.InferenceSession(str(model)).run(None, feeds)
    assert logits.shape == (5, 4) and (label == logits.argmax(axis=1)).all()


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_other_backends_run_it_and_match_the_reference(capsys, tmp_path, model, backend):
    pytest.importorskip({"openvino": "openvino", "torch": "torch"}[backend])
    code, doc = _run(capsys, tmp_path, model, "--backend", backend, "--scenario", "offline",
                     "--batch-size", "8", *FAST)
    assert_valid_or_load_bound(code, doc)
    f = doc["fidelity"]
    assert f["passed"], f["findings"]
    assert f["outputs"]["logits"]["max_rel_error"] < 1e-3
    assert f["outputs"]["label"]["exact_match"] == 1.0


def test_real_tensors_from_an_npz(capsys, tmp_path, model):
    """--inputs: the npz's samples are what the backend gets (their count is the sample set),
    and their sequence length sets the dynamic dimension without --input-shape."""
    data = tokens(40, 9)
    np.savez(tmp_path / "tokens.npz", **data)
    code, doc = run_json(capsys, tmp_path / "runs", "--workload", "onnx", "--model", str(model),
                         "--inputs", str(tmp_path / "tokens.npz"), "--scenario", "offline",
                         "--batch-size", "8", *FAST)
    assert_valid_or_load_bound(code, doc)
    assert doc["workload_info"]["sample_count"] == 40
    assert doc["workload_info"]["inputs"]["source"].endswith("tokens.npz")
    assert [t["shape"] for t in doc["workload_info"]["inputs"]["tensors"]] == [[9], [9]]
    w = workloads.create("onnx", str(model), inputs=str(tmp_path / "tokens.npz"))
    got = w.load_samples(np.array([7, 2]))
    np.testing.assert_array_equal(got["input_ids"], data["input_ids"][[7, 2]])
    np.testing.assert_array_equal(got["attention_mask"], data["attention_mask"][[7, 2]])


def _bad(capsys, tmp_path, model, *args) -> str:
    code, out, err = cli(capsys, "run", "--quiet", "--output", str(tmp_path), "--workload",
                         "onnx", "--model", str(model), "--scenario", "offline", *FAST, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_missing_dynamic_dimension_names_the_input_and_its_dimensions(capsys, tmp_path, model):
    err = _bad(capsys, tmp_path, model, "--input-shape", f"input_ids={SEQ}")
    assert "'attention_mask'" in err and "[batch, seq]" in err
    assert "--input-shape attention_mask=D" in err


def test_an_unknown_input_in_input_shape_names_the_inputs(capsys, tmp_path, model):
    err = _bad(capsys, tmp_path, model, "--input-shape", f"input_ids={SEQ}", "--input-shape",
               f"attention_mask={SEQ}", "--input-shape", "token_type_ids=12")
    assert "no input 'token_type_ids'" in err and "input_ids, attention_mask" in err


@pytest.mark.parametrize("shape,words", [("input_ids=12x3", "1 dimension(s)"),
                                         ("input_ids=0", "NAME=DxD"),
                                         ("input_ids", "NAME=DxD")])
def test_a_malformed_input_shape_says_how_to_write_it(capsys, tmp_path, model, shape, words):
    err = _bad(capsys, tmp_path, model, "--input-shape", shape, "--input-shape",
               f"attention_mask={SEQ}")
    assert words in err


def test_robustness_names_the_workloads_that_have_labelled_images(capsys, tmp_path, model):
    err = _bad(capsys, tmp_path, model, "--input-shape", f"input_ids={SEQ}", "--input-shape",
               f"attention_mask={SEQ}", "--robustness")
    assert "labelled reference set: onnx has none" in err and "--workload digits" in err
    assert "give the workload its --dataset" not in err  # onnx takes no --dataset


def test_input_shape_on_another_workload_is_refused(capsys, tmp_path):
    code, out, err = cli(capsys, "run", "--quiet", "--output", str(tmp_path), "--workload",
                         "tiny", "--input-shape", "x=3", *FAST)
    assert code == 2 and "applies to --workload onnx" in err


def test_onnx_without_a_model_is_refused(capsys, tmp_path):
    code, out, err = cli(capsys, "run", "--quiet", "--output", str(tmp_path), "--workload",
                         "onnx", *FAST)
    assert code == 2 and "give --model M.onnx" in err


@pytest.mark.parametrize("change,words", [
    (lambda d: d.pop("attention_mask"), "no array 'attention_mask'"),
    (lambda d: d.update(input_ids=d["input_ids"].astype(np.int32)),
     "'input_ids' is int32, the model's input is int64: save it as int64"),
    (lambda d: d.update(attention_mask=d["attention_mask"][:, :5]),
     "share dimension 'seq', but the arrays of"),
    (lambda d: d.update(attention_mask=d["attention_mask"][:, :, None]),
     "so a sample is 1 dimension(s) [seq], not 9x1"),
    (lambda d: d.update(extra=d["input_ids"]), "'extra' is not an input of the model"),
    (lambda d: d.update(input_ids=d["input_ids"][:30]), "leading dimensions"),
])
def test_a_bad_npz_names_the_fix(capsys, tmp_path, model, change, words):
    data = tokens(40, 9)
    change(data)
    np.savez(tmp_path / "bad.npz", **data)
    err = _bad(capsys, tmp_path, model, "--inputs", str(tmp_path / "bad.npz"))
    assert words in err


def test_inputs_that_share_a_dimension_get_one_size(capsys, tmp_path, model):
    err = _bad(capsys, tmp_path, model, "--input-shape", "input_ids=12", "--input-shape",
               "attention_mask=10")
    assert "share dimension 'seq', but --input-shape set it to 12 and 10" in err


def test_an_npz_against_a_contradicting_input_shape_is_refused(capsys, tmp_path, model):
    np.savez(tmp_path / "t.npz", **tokens(10, 9))
    err = _bad(capsys, tmp_path, model, "--inputs", str(tmp_path / "t.npz"), "--input-shape",
               "input_ids=12", "--input-shape", "attention_mask=12")
    assert "holds samples of [9], the model takes [12]" in err


def test_backends_that_take_one_tensor_refuse_it_with_the_fix(model):
    """cuda and tensorrt size and type their buffers from one input and one output; their
    refusal is checked here without their SDKs (they cannot run on this machine)."""
    from hwbench.backends.base import require_single_tensor
    from hwbench.errors import ModelError

    w = workloads.create("onnx", str(model), input_shapes=(("input_ids", (SEQ,)),
                                                           ("attention_mask", (SEQ,))))
    with pytest.raises(ModelError, match="takes input_ids int64, attention_mask int64 and "
                       "returns logits float32, label int64: run it with --backend cpu"):
        require_single_tensor("cuda", w.artifact(), "run it with --backend cpu")


def test_the_readme_examples_run(capsys, tmp_path, model):
    """README's "Any ONNX model" commands, as written, on the test model and an npz of its
    tokens (the window shortened)."""
    section = (REPO / "README.md").read_text().split("## Any ONNX model", 1)[1].split("\n## ")[0]
    commands = [shlex.split(c.replace("\\\n", " ")) for c in
                re.findall(r"^    (hwbench run .*?(?:\\\n.*?)*)$", section, re.M)]
    assert len(commands) == 2
    (tmp_path / "encoder.onnx").write_bytes(model.read_bytes())
    np.savez(tmp_path / "tokens.npz", **tokens(16, 128))
    for i, words in enumerate(commands):
        args = [str(tmp_path / w) if w in ("encoder.onnx", "tokens.npz") else w
                for w in words[2:]]
        code, doc = run_json(capsys, tmp_path / str(i), *args, *FAST)
        assert_valid_or_load_bound(code, doc)
        assert doc["fidelity"]["passed"]


def test_float16_int32_and_bool_inputs_get_their_own_dtypes(capsys, tmp_path):
    """Every input kind: float16 normal, int32 ids below the table's 7 rows, a bool padding
    mask; a float16 and a bool output compared with the reference (the bool one exactly)."""
    path = mixed(tmp_path / "mixed.onnx")
    w = workloads.create("onnx", str(path), input_shapes=(("flags", (6,)),))
    batch = w.load_samples(np.arange(50))
    assert [batch[k].dtype for k in ("pixels", "ids", "flags")] == [np.float16, np.int32, bool]
    assert batch["ids"].min() >= 0 and batch["ids"].max() == 6
    assert batch["flags"][:, 0].all() and not batch["flags"].all()
    assert abs(float(batch["pixels"].astype(np.float32).std()) - 1.0) < 0.2
    code, doc = run_json(capsys, tmp_path / "runs", "--workload", "onnx", "--model", str(path),
                         "--input-shape", "flags=6", "--scenario", "offline", "--batch-size",
                         "4", *FAST)
    assert_valid_or_load_bound(code, doc)
    f = doc["fidelity"]
    assert f["passed"] and f["outputs"]["y"]["kind"] == "float"
    assert f["outputs"]["positive"]["kind"] == "exact"
    assert f["outputs"]["positive"]["exact_match"] == 1.0


def test_a_single_input_model_is_fed_a_plain_array(capsys, tmp_path):
    """One input, one output: no records, the backends' single-tensor path."""
    from hwbench.workloads.digits import Digits

    path = Digits().default_model()
    w = workloads.create("onnx", str(path))
    batch = w.load_samples(np.arange(3))
    assert batch.dtype == np.float32 and batch.dtype.names is None
    assert batch.shape == (3, *w.artifact().sample_shape)
    code, doc = run_json(capsys, tmp_path, "--workload", "onnx", "--model", str(path),
                         "--scenario", "single-stream", *FAST)
    assert_valid_or_load_bound(code, doc)
    assert doc["fidelity"]["passed"] and doc["fidelity"]["outputs"] is None


def test_a_fixed_batch_of_one_caps_the_batch_size(capsys, tmp_path):
    import onnx

    proto = onnx.load(str(save(tmp_path / "m.onnx")))
    for i in proto.graph.input:
        i.type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(proto, str(tmp_path / "fixed.onnx"))
    args = ("--input-shape", f"input_ids={SEQ}", "--input-shape", f"attention_mask={SEQ}")
    err = _bad(capsys, tmp_path, tmp_path / "fixed.onnx", "--batch-size", "4", *args)
    assert "takes batches of at most 1" in err and "--batch-size 1" in err
    code, doc = run_json(capsys, tmp_path / "ok", "--workload", "onnx", "--model",
                         str(tmp_path / "fixed.onnx"), *args, "--scenario", "offline", *FAST)
    assert_valid_or_load_bound(code, doc)


def test_a_record_of_outputs_flattens_to_one_vector_for_the_audit():
    """hwbench audit's TEST01 compares each sample's outputs as one vector: every field of a
    record, in order (a plain output as itself)."""
    from hwbench.artifacts import flat_values, pack

    batch = pack([np.array([[0.5, -2.0], [1.0, 3.0]], np.float32), np.array([1, 0])],
                 ["logits", "label"])
    np.testing.assert_array_equal(flat_values(batch[1]), [1.0, 3.0, 0.0])
    np.testing.assert_array_equal(flat_values(np.array([[2, 3]], np.int64)), [2.0, 3.0])
