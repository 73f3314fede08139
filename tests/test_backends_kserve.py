"""The kserve backend against a real KServe v2 server: kserve 0.21's ModelServer serving the
digits model through onnxruntime on loopback, from its own virtual environment
(tests/kserve_env.py), over HTTP (binary-data extension) and gRPC (raw contents)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import kserve_env
from cli_helpers import FAST, assert_valid_or_load_bound, cli, run_json
from tls_helpers import self_signed

SERVER_ARGS = ["--scenario", "server", "--target-qps", "100", "--latency-bound-ms", "200",
               "--min-queries", "60"]


def digits_model() -> Path:
    from hwbench.workloads.digits import Digits

    return Digits().default_model()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = kserve_env.start(digits_model(), tmp_path_factory.mktemp("kserve") / "server.log")
    yield srv
    srv.stop()


def opts(*pairs: str) -> list[str]:
    return [a for p in pairs for a in ("--backend-opt", p)]


def test_server_scenario_over_http_is_valid_with_digits_accuracy(capsys, out_dir, server):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "kserve",
                         *opts(f"url={server.http_url}", "model=digits"), "--mode", "both",
                         "--instances", "2", *FAST, *SERVER_ARGS)
    assert_valid_or_load_bound(code, doc)
    assert doc["validated"]["accuracy"] is True, doc["accuracy"]
    info = doc["backend_info"]
    assert info["versions"]["server"] == "kserve"
    assert info["versions"]["server_version"].startswith("0.21")
    assert info["options"]["url"] == server.http_url and info["options"]["protocol"] == "http"
    assert info["concurrency"]["workers"] == 2
    assert info["request_errors"] == {}
    queued = doc["metrics"]["client_queueing"]  # two requests in flight at most, stamped
    assert queued["samples"] == doc["metrics"]["completed_samples"]
    assert queued["in_call_p50_ms"] > 0


def test_grpc_scores_the_same_reference_set(capsys, out_dir, server):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "kserve",
                         *opts(f"url={server.grpc_url}", "model=digits", "protocol=grpc"),
                         "--mode", "accuracy", "--scenario", "offline", *FAST)
    assert code == 0, doc["invalid_reasons"]
    assert doc["validated"]["accuracy"] is True
    assert doc["backend_info"]["device"] == "remote (grpc)"


def test_a_closed_port_is_exit_2_naming_the_url(capsys, out_dir):
    url = f"http://127.0.0.1:{kserve_env.free_port()}"
    code, out, err = cli(capsys, "run", "--workload", "digits", "--backend", "kserve",
                         *opts(f"url={url}", "model=digits"), *FAST, "--output", str(out_dir))
    assert code == 2
    assert "no KServe v2 server answers at " + url in err and "refused" in err
    assert "Traceback" not in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_wrong_model_name_is_exit_2_naming_the_served_models(capsys, out_dir, server,
                                                               protocol):
    url = server.http_url if protocol == "http" else server.grpc_url
    code, _, err = cli(capsys, "run", "--workload", "digits", "--backend", "kserve",
                       *opts(f"url={url}", "model=digitz", f"protocol={protocol}"), *FAST,
                       "--output", str(out_dir))
    assert code == 2
    assert "has no model 'digitz'" in err and "Traceback" not in err
    if protocol == "http":  # kserve lists its models over REST (/v1/models), not over gRPC
        assert "it serves: digits" in err


def test_a_workload_the_model_does_not_match_is_exit_2(capsys, out_dir, server):
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--backend", "kserve",
                       *opts(f"url={server.http_url}", "model=digits"), *FAST,
                       "--output", str(out_dir))
    assert code == 2
    assert "model 'digits' has no input named" in err or "shape" in err


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_server_that_stalls_mid_run_ends_invalid_naming_the_timeout(tmp_path, out_dir,
                                                                      protocol):
    srv = kserve_env.start(digits_model(), tmp_path / "server.log", "--stall-after", "40")
    try:
        url = srv.http_url if protocol == "http" else srv.grpc_url
        # A real process, with a bound, so that a hang fails the test instead of holding it.
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("hwbench")), "run", "--workload", "digits",
             "--backend", "kserve", *opts(f"url={url}", "model=digits", "timeout_s=1",
                                          f"protocol={protocol}"),
             "--duration", "3", "--warmup", "0", "--min-queries", "20", *SERVER_ARGS[:4],
             "--output", str(out_dir), "--json", "--quiet"],
            capture_output=True, text=True, timeout=120)
    finally:
        srv.stop()
    import json

    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["valid"]
    assert any("timeout" in r and "within 1" in r for r in doc["invalid_reasons"]), \
        doc["invalid_reasons"]
    assert doc["backend_info"]["request_errors"]["timeout"] >= 1
    assert "Traceback" not in proc.stderr


def test_tls_and_an_api_key_that_never_reaches_the_output(capsys, tmp_path, out_dir,
                                                          monkeypatch):
    pytest.importorskip("cryptography")
    key = "hwbench-test-key-5f1d2c"
    cert, private = self_signed(tmp_path)
    srv = kserve_env.start(digits_model(), tmp_path / "server.log", "--api-key-env",
                           "HWB_SERVER_KEY", tls=(cert, private), env={"HWB_SERVER_KEY": key})
    try:
        base = ["run", "--workload", "digits", "--backend", "kserve", *FAST,
                "--output", str(out_dir)]
        # Without the key the server refuses: exit 2, naming the option.
        code, _, err = cli(capsys, *base, *opts(f"url={srv.http_url}", "model=digits",
                                                f"tls_ca={cert}"))
        assert code == 2 and "api_key_env" in err
        # Without the CA the certificate is not trusted: exit 2, naming tls_ca.
        monkeypatch.setenv("HWB_KEY", key)
        code, _, err = cli(capsys, *base, *opts(f"url={srv.http_url}", "model=digits",
                                                "api_key_env=HWB_KEY"))
        assert code == 2 and "tls_ca" in err
        # insecure=true: TLS without checking the certificate (http only).
        code, _, err = cli(capsys, *base, "--mode", "accuracy",
                           *opts(f"url={srv.http_url}", "model=digits", "insecure=true",
                                 "api_key_env=HWB_KEY"))
        assert code == 0, err
        code, out, err = cli(capsys, *base, "--json", "--quiet", "--mode", "both",
                             *opts(f"url={srv.http_url}", "model=digits", f"tls_ca={cert}",
                                   "api_key_env=HWB_KEY"))
    finally:
        srv.stop()
    import json

    doc = json.loads(out)
    assert_valid_or_load_bound(code, doc)
    assert doc["validated"]["accuracy"] is True
    assert doc["backend_info"]["options"]["api_key_env"] == "HWB_KEY"
    grep = subprocess.run(["grep", "-r", key, str(out_dir)], capture_output=True)
    assert grep.returncode == 1, grep.stdout  # 1: no line matched
    assert key not in out and key not in err


def test_options_that_cannot_work_are_exit_2(capsys, out_dir, monkeypatch):
    monkeypatch.delenv("HWB_UNSET_KEY", raising=False)
    cases = [((), "url=http"),
             (("url=http://127.0.0.1:9", "model=m", "api_key_env=HWB_UNSET_KEY"),
              "export HWB_UNSET_KEY"),
             (("url=127.0.0.1:9", "model=m", "protocol=grpc", "insecure=true"), "tls_ca"),
             (("url=https://127.0.0.1:9", "model=m", "tls_ca=/nonexistent.pem"),
              "is not a file")]
    for pairs, words in cases:
        code, _, err = cli(capsys, "run", "--workload", "digits", "--backend", "kserve",
                           *opts(*pairs), *FAST, "--output", str(out_dir))
        assert code == 2, (pairs, err)
        assert words in err and "Traceback" not in err, (pairs, err)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_model_of_two_int64_inputs_and_two_outputs_by_name(capsys, tmp_path, out_dir,
                                                             protocol):
    """--workload onnx through the server: input_ids and attention_mask sent by name (INT64),
    logits (FP32) and label (INT64) read by name, equal to the FP32 reference's."""
    from anymodel import save

    model = save(tmp_path / "encoder.onnx")
    srv = kserve_env.start(model, tmp_path / "server.log", "--name", "encoder")
    try:
        url = srv.grpc_url if protocol == "grpc" else srv.http_url
        code, doc = run_json(capsys, out_dir, "--workload", "onnx", "--model", str(model),
                             "--input-shape", "input_ids=12", "--input-shape",
                             "attention_mask=12", "--backend", "kserve",
                             *opts(f"url={url}", "model=encoder", f"protocol={protocol}"),
                             "--scenario", "offline", "--batch-size", "4", *FAST)
    finally:
        srv.stop()
    assert_valid_or_load_bound(code, doc)
    f = doc["fidelity"]
    assert f["passed"] and f["outputs"]["label"]["exact_match"] == 1.0
    assert f["outputs"]["logits"]["max_rel_error"] <= 1e-5
