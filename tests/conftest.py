"""Shared fixtures: a private output root and model cache for every test."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # One cache per session, so the synthetic models are built once for the whole suite.
    cache = Path(os.environ.get("HWBENCH_TEST_CACHE") or tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("HWBENCH_CACHE", str(cache))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
