"""The one way hwbench writes what others read: whole, or not at all (real files in tmp_path)."""
from __future__ import annotations

import pytest

from hwbench.atomic import create_dir_atomically, write_atomically


def test_a_file_is_replaced_whole(tmp_path):
    path = tmp_path / "cache" / "model.onnx"
    write_atomically(path, lambda tmp: tmp.write_text("one"))
    write_atomically(path, lambda tmp: tmp.write_text("two"), suffix=".onnx")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("old")

    def half(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(path, half)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_directory_appears_whole_and_never_replaces_one(tmp_path):
    run = tmp_path / "runs" / "run-1"
    create_dir_atomically(run, lambda tmp: (tmp / "result.json").write_text("{}"))
    assert [p.name for p in run.iterdir()] == ["result.json"]
    with pytest.raises(FileExistsError):
        create_dir_atomically(run, lambda tmp: (tmp / "result.json").write_text("[]"))
    assert (run / "result.json").read_text() == "{}"


def test_a_failed_directory_leaves_nothing(tmp_path):
    def half(tmp):
        (tmp / "result.json").write_text("{}")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_dir_atomically(tmp_path / "run-2", half)
    assert list(tmp_path.iterdir()) == []
