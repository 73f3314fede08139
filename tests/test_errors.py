"""One error tree (hwbench/errors.py): every error hwbench raises on purpose is in it, and an
error the user causes is a usage error (exit status 2), found before anything is measured."""
from __future__ import annotations

import inspect

from hwbench import errors
from hwbench.telemetry import base, ptdaemon, window

from cli_helpers import FAST, cli


def test_every_error_is_in_the_tree():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if c.__module__ == errors.__name__]
    assert all(issubclass(c, errors.HwbenchError) for c in classes)
    # the names telemetry raises are the tree's, wherever they are imported from
    assert base.SourceUnavailable is errors.SourceUnavailable
    assert ptdaemon.PtdError is errors.PtdError
    assert window.NotBracketed is errors.NotBracketed
    assert issubclass(errors.NotBracketed, errors.MeasurementError)


def test_an_output_that_is_a_file_is_a_usage_error_before_measuring(capsys, tmp_path):
    output = tmp_path / "not-a-folder"
    output.write_text("")
    code, out, err = cli(capsys, "run", "--workload", "tiny", "--backend", "null", "--scenario",
                         "single-stream", *FAST, "--quiet", "--output", str(output))
    assert code == 2
    assert "is a file: give a folder" in err and "internal error" not in err
    assert output.read_text() == ""
