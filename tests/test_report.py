"""``hwbench report`` through the CLI on real runs, and the page checked in a real headless
browser (Debian's chromium): it loads without console errors, its plots are in the DOM, and its
screenshot is not blank. Power, telemetry and robustness cannot be measured here: one test copies
a real run and sets contract-shaped sections and a telemetry.npz timeline (analysis_helpers)."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from analysis_helpers import POWER, ROBUSTNESS, TELEMETRY, derive, make_run, module_env
from cli_helpers import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    mp = module_env(tmp_path_factory)
    root = tmp_path_factory.mktemp("report") / "runs"
    run = make_run(root, "--workload", "digits", "--scenario", "single-stream", "--mode", "both",
                   "--backend", "cpu")
    mp.undo()
    return run


def _report(capsys, run_dir, out):
    code, stdout, err = cli(capsys, "report", str(run_dir), "--out", str(out))
    assert code == 0, err
    return out.read_text()


def test_report_sections_from_a_real_run(capsys, digits_run, tmp_path):
    page = _report(capsys, digits_run, tmp_path / "r.html")
    for heading in ("Summary", "Latency and throughput", "Power", "Accuracy", "Robustness",
                    "System", "Settings"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<svg") == 3  # distribution + percentile, over time, confusion matrix
    assert "no power telemetry" in page and "robustness not measured" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page) and "<script" not in page


def test_report_with_contract_shaped_sections(capsys, digits_run, tmp_path):
    def full(doc):
        doc.update(power=POWER, telemetry=TELEMETRY, robustness=ROBUSTNESS)
    run = derive(digits_run, tmp_path / "runs", full, "full")
    t = np.arange(0, 3e8, 1e8)
    np.savez(run / "telemetry.npz", **{"rapl.t_ns": t, "rapl.rapl:package-0.watts": 20 + t / 1e8})
    page = _report(capsys, run, tmp_path / "r.html")
    assert "power over time" in page and "rapl:package-0" in page and "no NVIDIA GPU" in page
    assert "gaussian_noise" in page and "severity 5" in page
    assert "peak_rss_bytes" in page and page.count("<svg") == 5  # + the robustness heatmap
    assert "top-1 by corruption and severity" in page and "robustness.json" in page


def test_a_thousand_classes_show_the_worst_with_support_and_a_distribution(capsys, digits_run,
                                                                          tmp_path):
    """ImageNet-sized: 1,000 classes of 12 samples, named; class 999 has one sample, always
    missed. The page lists the 10 worst classes of enough support (never class 999), plots the
    spread, and leaves the full table to accuracy.json."""
    rng = np.random.default_rng(0)

    def thousand(doc):
        rows = [{"class": c, "support": 12, "recall": float(rng.integers(3, 13) / 12),
                 "precision": 0.9, "name": f"n{c:08d} thing {c}"} for c in range(999)]
        rows.append({"class": 999, "support": 1, "recall": 0.0, "precision": None,
                     "name": "n00000999 rare"})
        doc["accuracy"].update(per_class=rows, worst_class_min_support=10)
    run = derive(digits_run, tmp_path / "runs", thousand, "thousand")
    page = _report(capsys, run, tmp_path / "r.html")
    section = page.split("<h2>Accuracy</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Worst 10 classes" in section and "1,000 classes" in section
    assert "accuracy.json" in section and "per-class recall" in section
    assert "n00000999 rare" not in section and section.count("<tr") < 40
    assert "thing" in section  # listed by their names


def test_too_few_samples_per_class_name_no_worst_class_and_say_why(capsys, digits_run,
                                                                  tmp_path):
    def sparse(doc):
        doc["accuracy"].update(worst_class_min_support=10, per_class=[
            {"class": c, "support": 1 + c % 3, "recall": float(c % 2), "precision": 1.0}
            for c in range(40)])
    run = derive(digits_run, tmp_path / "runs", sparse, "sparse")
    page = _report(capsys, run, tmp_path / "r.html")
    section = page.split("<h2>Accuracy</h2>", 1)[1].split("<h2>", 1)[0]
    assert "No worst classes shown: no class has 10 or more samples (the largest has 3)" \
        in section and "Worst" not in section.replace("No worst", "")


def test_report_never_overwrites_and_bad_dir(capsys, digits_run, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("keep")
    code, _, err = cli(capsys, "report", str(digits_run), "--out", str(out))
    assert code == 2 and "already exists" in err and out.read_text() == "keep"
    code, _, err = cli(capsys, "report", str(tmp_path))
    assert code == 2 and "no result.json" in err


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_headless_browser_renders_the_report(capsys, digits_run, tmp_path):
    page = tmp_path / "r.html"
    _report(capsys, digits_run, page)
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,1600"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not re.search(r"CONSOLE|Uncaught", dom.stderr), dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and "Latency and throughput" in dom.stdout
    shoot = subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], capture_output=True,
                           text=True, timeout=120)
    assert shoot.returncode == 0 and shot.is_file(), shoot.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # a blank page has one colour
    assert (pixels < 200).mean() > 0.02  # text and plots cover a visible share of it


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_console_error_detection_works(tmp_path):
    """The console check above can fail: a page with a script error is caught by it."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFn();</script></body></html>")
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                          "--v=0", "--dump-dom", bad.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert re.search(r"CONSOLE|Uncaught", run.stderr)
