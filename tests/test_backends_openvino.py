"""The ``openvino`` backend, for real: the same end-to-end runs as ``cpu``, digits accuracy against
OpenVINO called directly, the effective precision in the result, and clear errors for devices
and options that cannot work here."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import test_cli_run
from cli_helpers import FAST, cli, register_backend, run_json
from hwbench.backends.openvino import OpenVinoBackend
from hwbench.workloads.digits import Digits

_AVAIL = OpenVinoBackend.availability()
pytestmark = pytest.mark.skipif(not _AVAIL.usable, reason=f"openvino is not usable here: "
                                f"{_AVAIL.reason} ({_AVAIL.install})")


@pytest.mark.parametrize("scenario", list(test_cli_run.SCENARIO_ARGS))
def test_every_scenario_end_to_end(capsys, out_dir, scenario):
    test_cli_run.test_every_scenario_end_to_end(capsys, out_dir, scenario, "openvino")


def _direct_top1(precision: str) -> float:
    """Digits top-1 from OpenVINO called directly, one sample per request, as the harness runs."""
    import openvino as ov

    w = Digits()
    compiled = ov.Core().compile_model(str(w.artifact().path), "CPU",
                                       {"INFERENCE_PRECISION_HINT": precision})
    x = w.load_samples(np.arange(w.sample_count()))
    request = compiled.create_infer_request()
    pred = [request.infer({0: x[i:i + 1]})[0].argmax() for i in range(len(x))]
    return float(np.mean(np.array(pred) == w.labels()))


@pytest.mark.parametrize("asked", ["auto", "f32"])
def test_digits_accuracy_passes_and_records_the_effective_precision(capsys, out_dir, asked):
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "openvino",
                         "--mode", "both", "--duration", "0.5", "--warmup", "0.1",
                         "--backend-opt", f"precision={asked}")
    assert code == 0, doc["invalid_reasons"]
    assert doc["validated"] == {"performance": True, "accuracy": True, "fidelity": True}
    info = doc["backend_info"]
    assert info["options"]["precision"] == asked and info["options"]["execution_devices"] == ["CPU"]
    # What OpenVINO compiled with, asked of OpenVINO independently of the backend.
    import openvino as ov

    core = ov.Core()
    hint = {} if asked == "auto" else {"INFERENCE_PRECISION_HINT": asked}
    chosen = core.compile_model(str(Digits().artifact().path), "CPU", hint).get_property(
        "INFERENCE_PRECISION_HINT").get_type_name()
    assert info["precision"] == {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}[chosen]
    assert doc["accuracy"]["passed"]
    assert doc["accuracy"]["value"] == pytest.approx(_direct_top1(chosen), abs=1e-12)


def test_auto_device_records_where_it_ran(capsys, out_dir):
    code, doc = run_json(capsys, out_dir, "--workload", "tiny", "--backend", "openvino",
                         "--scenario", "single-stream", *FAST, "--backend-opt", "device=AUTO")
    assert code == 0, doc["invalid_reasons"]
    assert doc["backend_info"]["device"] == "CPU"
    assert doc["backend_info"]["precision"] in ("fp32", "bf16", "fp16")


def test_absent_device_names_the_devices_present(capsys, out_dir):
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--backend", "openvino",
                         "--backend-opt", "device=NPU", "--output", str(out_dir))
    assert code == 2 and "Traceback" not in err
    assert "device NPU is not present here (devices: CPU" in err and "device=CPU" in err
    assert not out_dir.exists() or not any(out_dir.glob("*/result.json"))


def test_forced_precision_needs_an_explicit_device(capsys, out_dir):
    code, _, err = cli(capsys, "run", "--workload", "tiny", "--backend", "openvino",
                       "--backend-opt", "device=AUTO", "--backend-opt", "precision=f32",
                       "--output", str(out_dir))
    assert code == 2 and "explicit device" in err and len(err.strip().splitlines()) == 1


class _InFlight:
    """Counts OpenVINO infer requests inside infer() at once. The first call is held (5 s at
    most) until a second request enters, so two workers that can compute together are seen
    together, and a backend that serialises its requests is seen never to."""

    def __init__(self) -> None:
        self.lock, self.now, self.peak = threading.Lock(), 0, 0
        self.held, self.joined = False, threading.Event()

    def wrap(self, request):
        meter = self

        class Request:
            def infer(self, *args, **kw):
                with meter.lock:
                    meter.now += 1
                    meter.peak = max(meter.peak, meter.now)
                    first, meter.held = not meter.held, True
                    if meter.now >= 2:
                        meter.joined.set()
                try:
                    if first:
                        meter.joined.wait(5)
                    return request.infer(*args, **kw)
                finally:
                    with meter.lock:
                        meter.now -= 1

            def get_output_tensor(self, i):
                return request.get_output_tensor(i)
        return Request()


def test_throughput_hint_keeps_several_requests_in_flight(capsys, out_dir, monkeypatch):
    meter = _InFlight()

    class Observed(OpenVinoBackend):
        def load(self, model):
            super().load(model)
            pool = [self._requests.get() for _ in range(self._n_requests)]
            for request in pool:
                self._requests.put(meter.wrap(request))

    register_backend(monkeypatch, Observed)
    code, doc = run_json(capsys, out_dir, "--workload", "digits", "--backend", "openvino",
                         "--mode", "accuracy", "--instances", "2", "--batch-size", "4",
                         "--backend-opt", "hint=throughput", "--backend-opt", "streams=2")
    assert code == 0, doc["invalid_reasons"]
    assert meter.peak >= 2  # observed: two requests computing at once
    info = doc["backend_info"]
    assert info["options"]["num_streams"] == 2 and info["options"]["infer_requests"] >= 2
    # A thread-safe backend: two workers share one compiled model.
    assert info["concurrency"] == {"workers": 2, "backend_instances": 1}
    assert doc["accuracy"]["passed"]
