"""What a node must share with the driver before it gets work: hwbench's version and build.

The build is a digest of the installed package: the compiled load generator and every Python
and TOML file of hwbench (its backends and scenarios included). Two installs of one version
whose code differs (a local patch, another compiler) have different builds, and their figures
are not one benchmark's.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import hwbench
from hwbench import backends, scenarios


@functools.lru_cache(maxsize=1)
def identity() -> dict[str, Any]:
    """{"version", "build"} of the hwbench installed in this process's environment."""
    from hwbench import _loadgen  # the compiled extension is part of the build

    digest = hashlib.sha256(Path(_loadgen.__file__).read_bytes())
    # each package's own folder (an editable install's __path__ also names the checkout)
    for package in (hwbench, backends, scenarios):
        top = Path(package.__file__).parent
        for f in sorted(p for p in top.rglob("*") if p.suffix in (".py", ".toml")
                        and "__pycache__" not in p.parts):
            digest.update(f"{package.__name__}/{f.relative_to(top)}".encode() + b"\0"
                          + f.read_bytes() + b"\0")
    return {"version": hwbench.__version__, "build": digest.hexdigest()[:16]}


def on_this_node() -> dict[str, Any]:
    """identity(), as a plain function a Ray task can run on a node."""
    return dict(identity())


def mismatch(local: dict[str, Any], remote: dict[str, Any]) -> str | None:
    """Why a node with identity `remote` must not get work from a driver with `local` (None:
    it may)."""
    if remote.get("version") != local["version"]:
        return (f"hwbench {remote.get('version')} there, {local['version']} here: install "
                "the same version on every node")
    if remote.get("build") != local["build"]:
        return (f"hwbench build {remote.get('build')} there, {local['build']} here (same "
                "version, different code): install the same build on every node")
    return None
