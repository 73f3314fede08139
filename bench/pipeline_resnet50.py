"""The whole pipeline against the model alone: resnet50 (synthetic weights) on generated JPEGs.

Generates ``--images`` JPEGs of ImageNet's most common validation geometry (500x375 and 375x500,
quality 90, ~100 KB: grain keeps them from compressing like flat drawings) in MLPerf's layout,
then runs ``hwbench run --workload resnet50 --pipeline both`` on them with the synthetic
ResNet50-v1.5 graph (seeded weights, built once into the cache) and prints the pipeline section:
end-to-end against model-only throughput and p99, each stage's time and utilisation, and the
stage the pipeline is bound by. Both paths run in the same process, one after the other, on the
same samples and settings: the ratio is the figure, not either rate alone.

    python bench/pipeline_resnet50.py --images 64 --duration 10 --scenario offline
    python bench/pipeline_resnet50.py --scenario single-stream --preprocess-workers 1
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # bench/ only (with -P): the generator of images
from imagenet_preprocessing import make_images  # noqa: E402


def synthetic_model() -> Path:
    from hwbench.workloads import create

    return create("resnet50", None, None, 1).default_model(print)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--scenario", default="offline")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--preprocess-workers", type=int, default=2)
    a = p.parse_args()
    model = synthetic_model()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "val"
        make_images(root, a.images)
        sizes = [f.stat().st_size for f in root.glob("*.JPEG")]
        print(f"{len(sizes)} JPEGs, mean {sum(sizes) / len(sizes) / 1e3:.0f} KB")
        exe = Path(sys.executable).with_name("hwbench")
        cmd = [str(exe), "run", "--workload", "resnet50", "--model", str(model), "--dataset",
               str(root), "--backend", "cpu", "--scenario", a.scenario, "--pipeline", "both",
               "--duration", str(a.duration), "--batch-size", str(a.batch_size),
               "--preprocess-workers", str(a.preprocess_workers), "--no-power",
               "--output", str(Path(tmp) / "runs"), "--json", "--quiet"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode not in (0, 3):
            sys.exit(f"hwbench run failed ({done.returncode}): {done.stderr.strip()}")
        doc = json.loads(done.stdout)
    report(doc)


def report(doc: dict) -> None:
    p = doc["pipeline"]
    e, m = p["end_to_end"], p["model_only"]
    print(f"scenario {doc['scenario']}, batch size {doc['settings']['config']['batch_size']}, "
          f"{p['preprocess_workers']} preprocessing worker(s), {p['compute_workers']} compute "
          f"worker(s); valid: {doc['valid']} {doc['invalid_reasons'] or ''}")
    for name, f in (("model-only", m), ("end-to-end", e)):
        lat = f["latency_ms"]
        print(f"{name:11s} {f['samples_per_second']:8.1f} samples/s   p50 {lat['p50']:9.2f} ms"
              f"   p99 {lat['p99']:9.2f} ms")
    print(f"ratio end-to-end / model-only: {p['throughput_ratio']:.2f}; "
          f"p99 {p['p99_delta_ms']:+.1f} ms; bound by {p['bound_by']}")
    print(f"{'stage':12s} {'mean ms':>9s} {'p50 ms':>9s} {'p99 ms':>9s} {'utilisation':>12s}")
    for stage, t in p["stages_ms"].items():
        u = p["utilisation"].get(stage)
        print(f"{stage:12s} {t['mean']:9.2f} {t['p50']:9.2f} {t['p99']:9.2f} "
              f"{'waiting' if u is None else f'{u:.0%}':>12s}")


if __name__ == "__main__":
    main()
