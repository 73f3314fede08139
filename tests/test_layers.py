"""The house in layers (docs/architecture.md): each folder of hwbench/ is one layer, imports only
go down, and nothing imports in a circle.

import-linter reads the contract in pyproject.toml. It runs on a staged copy of the package as
it is installed (backends/ and scenarios/ inside hwbench/), built from this checkout, so the check
is the same with an editable install, a wheel, or none; the copy is imported by nothing.
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import importlinter
import pytest

import hwbench
from hwbench import backends, telemetry, workloads

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACTS = PYPROJECT["tool"]["importlinter"]["contracts"]
MAX_TOP_MODULES = 8


def stage(tmp: Path) -> Path:
    """hwbench's Python files laid out as installed (pyproject's wheel.packages), and the
    contract."""
    dest = tmp / "stage"
    for pkg, src in PYPROJECT["tool"]["scikit-build"]["wheel"]["packages"].items():
        for f in (ROOT / src).rglob("*.py"):
            target = dest / pkg / f.relative_to(ROOT / src)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(f, target)
    shutil.copyfile(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def in_stage(staged: Path, code: str) -> subprocess.CompletedProcess:
    """Runs `code` with only the staged copy and import-linter's own packages importable."""
    site = str(Path(importlinter.__file__).parents[1])
    grimp_site = str(Path(grimp.__file__).parents[1])
    prelude = f"import sys; sys.path[:0] = [{str(staged)!r}, {site!r}, {grimp_site!r}]\n"
    return subprocess.run([sys.executable, "-S", "-c", prelude + code], cwd=staged,
                          capture_output=True, text=True, timeout=300)


LINT = ("from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")


def test_the_contract_holds(tmp_path):
    done = in_stage(stage(tmp_path), LINT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    staged = stage(tmp_path)
    sut = staged / "hwbench" / "harness" / "sut.py"
    sut.write_text(sut.read_text() + "\nfrom hwbench.results import store  # upward\n")
    done = in_stage(staged, LINT)
    assert done.returncode != 0
    assert "hwbench.harness.sut -> hwbench.results.store" in done.stdout


def test_a_backend_importing_a_workload_breaks_the_contract(tmp_path):
    staged = stage(tmp_path)
    null = staged / "hwbench" / "backends" / "null.py"
    null.write_text(null.read_text() + "\nfrom hwbench.workloads import base  # sideways\n")
    assert in_stage(staged, LINT).returncode != 0


def test_the_contract_describes_layers_not_exceptions():
    assert CONTRACTS and all("ignore_imports" not in c for c in CONTRACTS)


def _layer_names() -> set[str]:
    layers = next(c for c in CONTRACTS if c["type"] == "layers")["layers"]
    names = set()
    for layer in layers:
        for part in layer.replace("|", ":").split(":"):
            names.add(part.strip().strip("()"))
    return names


def _children() -> set[str]:
    """The folders and modules directly in the installed hwbench package."""
    pkg = ROOT / "hwbench"
    kids = {p.stem for p in pkg.glob("*.py")} | {p.name for p in pkg.iterdir()
                                                   if (p / "__init__.py").is_file()}
    return (kids | {"backends", "scenarios"}) - {"__init__", "__main__"}  # __main__: the command


def test_every_folder_and_module_of_hwbench_has_a_layer():
    assert _children() <= _layer_names(), sorted(_children() - _layer_names())


def test_at_most_8_modules_directly_in_hwbench():
    modules = sorted(p.name for p in (ROOT / "hwbench").glob("*.py"))
    assert len(modules) <= MAX_TOP_MODULES, modules


GRAPH = """
import grimp, json
g = grimp.build_graph("hwbench")
print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}))
"""


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


@pytest.fixture(scope="module")
def imports(tmp_path_factory) -> dict[str, set[str]]:
    done = in_stage(stage(tmp_path_factory.mktemp("graph")), GRAPH)
    assert done.returncode == 0, done.stderr
    return {m: set(v) for m, v in json.loads(done.stdout).items()}


def test_no_cycle_between_modules(imports):
    """Lazy imports (inside functions) count: grimp reads every import statement."""
    assert _cycles(imports) == []


def test_no_cycle_between_folders(imports):
    def folder(m: str) -> str:
        return ".".join(m.split(".")[:2])
    edges: dict[str, set[str]] = {}
    for m, targets in imports.items():
        edges.setdefault(folder(m), set()).update(
            folder(t) for t in targets if folder(t) != folder(m))
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Registries import by name (importlib), which import-linter cannot see: every entry must
# resolve, and load a module of the registry's own folder.
def test_registries_load_only_from_their_own_folder():
    for name in backends.names():
        assert backends.backend_class(name).__module__.startswith("hwbench.backends."), name
    for name in workloads.names():
        assert workloads.workload_class(name).__module__.startswith("hwbench.workloads."), name
    for name in telemetry.names():
        assert telemetry.source_class(name).__module__.startswith("hwbench.telemetry."), name
    assert telemetry.system_source_class().__module__.startswith("hwbench.telemetry.")


def _by_name_imports() -> dict[str, list[str]]:
    """Modules that call importlib.import_module, and the module names written in them."""
    found = {}
    for f in [*(ROOT / "hwbench").rglob("*.py"), *(ROOT / "backends").rglob("*.py")]:
        tree = ast.parse(f.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "attr", getattr(n.func, "id", None)) == "import_module"]
        if calls:
            strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                       and isinstance(n.value, str) and n.value.startswith("hwbench.")]
            found[str(f.relative_to(ROOT))] = strings
    return found


def test_every_by_name_import_is_a_known_registry():
    assert set(_by_name_imports()) == {"hwbench/__init__.py", "hwbench/workloads/__init__.py",
                                       "hwbench/telemetry/registry.py", "backends/__init__.py"}


def test_the_public_facade_resolves():
    """hwbench.run and hwbench.load_result import their modules by name (see hwbench/__init__)."""
    import importlib

    targets = _by_name_imports()["hwbench/__init__.py"]
    assert {t.split(".")[1] for t in targets} == {"passes", "harness", "results"}
    for target in targets:
        importlib.import_module(target)
    assert callable(hwbench.run) and callable(hwbench.load_result)
