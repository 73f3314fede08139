"""The index as a pandas DataFrame (hwbench.analysis.runs_frame) and `hwbench export`."""
from __future__ import annotations

import io

import pytest

from cli_helpers import cli

pd = pytest.importorskip("pandas")
NULL = ["--workload", "tiny", "--backend", "null", "--scenario", "single-stream", "--duration",
        "0.2", "--warmup", "0", "--min-queries", "70", "--no-power", "--quiet"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from hwbench.cli import main
    root = tmp_path_factory.mktemp("export")
    assert main(["run", "--output", str(root), *NULL]) == 0
    assert main(["run", "--output", str(root), *NULL[:5], "server", *NULL[6:],
                 "--target-qps", "500", "--latency-bound-ms", "50", "--min-queries", "700",
                 "--duration", "1.5"]) in (0, 3)
    return root


def test_runs_frame_has_one_typed_row_per_run(root):
    from hwbench.analysis import runs_frame
    f = runs_frame(root)
    assert len(f) == 2 and list(f["scenario"]) == ["single-stream", "server"]  # oldest first
    assert str(f["created_utc"].dtype) == "datetime64[ns, UTC]"
    assert str(f["workload"].dtype) == "category" and str(f["valid"].dtype) == "boolean"
    assert f["latency_p99_ms"].dtype == "Float64" and (f["latency_p99_ms"] > 0).all()
    assert f["target_qps"].isna().tolist() == [True, False]  # not a Server run: missing, not 0
    assert f["avg_w"].isna().all()  # no power measured here: missing, not 0
    assert f["accuracy_value"].isna().all()
    assert len(runs_frame(root, scenario="server")) == 1


def test_the_frame_round_trips_through_parquet_with_its_dtypes(root, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from hwbench.analysis import runs_frame
    path = tmp_path / "runs.parquet"
    code, out, err = cli(capsys, "export", "--root", str(root), "--parquet", str(path))
    assert code == 0 and "2 runs written" in out, err
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, runs_frame(root))
    code, _, err = cli(capsys, "export", "--root", str(root), "--parquet", str(path))
    assert code == 2 and "never overwritten" in err  # results are never overwritten


def test_export_csv_to_standard_output(root, capsys):
    code, out, err = cli(capsys, "export", "--root", str(root), "--csv", "-")
    assert code == 0, err
    f = pd.read_csv(io.StringIO(out))
    assert len(f) == 2 and {"run_id", "samples_per_second", "latency_p99_ms"} <= set(f.columns)


def test_export_of_an_empty_root_is_one_line(tmp_path, capsys):
    code, _, err = cli(capsys, "export", "--root", str(tmp_path), "--csv", "-")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no runs" in err
