"""Shows that the repaired tests can fail: applies each mutant in bench/mutants/ (a patch that
breaks the code one test guards), runs that test, expects it red, and puts the code back.

    pip install -e '.[test]' nanobind scikit-build-core   # editable: patched files take effect
    python bench/mutants/run.py                 # every mutant in mutants.toml
    python bench/mutants/run.py NAME [NAME...]  # some of them

A mutant that touches ext/ rebuilds the extension before its test and again after the code is
put back (an incremental build in build/, about a minute the first time). The checkout must
have no uncommitted change in the files a patch touches. Exit status 0 when every mutant turned
its tests red, 1 otherwise; a table says which.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=check)


def touched(patch: Path) -> list[str]:
    out = git("apply", "--numstat", str(patch)).stdout
    return [line.split("\t")[2] for line in out.splitlines()]


def rebuild() -> None:
    """Rebuilds the compiled load generator in place (an editable install)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "-e", str(ROOT)], cwd=ROOT, check=True)


def check_editable() -> None:
    import hwbench

    if Path(hwbench.__file__).resolve().parent != ROOT / "hwbench":
        sys.exit(f"hwbench is imported from {Path(hwbench.__file__).parent}, not this checkout: "
                 f"install it editable first: pip install -e '.[test]' nanobind scikit-build-core")


def run_mutant(name: str, spec: dict) -> tuple[bool, str, float]:
    patch = HERE / f"{name}.patch"
    files = touched(patch)
    if git("diff", "--quiet", "--", *files, check=False).returncode:
        sys.exit(f"{', '.join(files)} has uncommitted changes: commit or stash them first")
    native = any(f.startswith("ext/") for f in files)
    start = time.monotonic()
    git("apply", str(patch))
    try:
        if native:
            rebuild()
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "--tb=line",
                              "-p", "no:cacheprovider", *spec["tests"]],
                             cwd=ROOT, capture_output=True, text=True)
    finally:
        git("apply", "-R", str(patch))
        if native:
            rebuild()
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    # --tb=line: one "file:line: Error: message" line per failure says why the test went red.
    why = ([l for l in lines if re.search(r"\.py:\d+: ", l)][:1] or lines[-1:]
           or ["(no output)"])
    return res.returncode == 1, why[0][-160:], time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    args = ap.parse_args(argv)
    mutants = tomllib.loads((HERE / "mutants.toml").read_text())
    unknown = [n for n in args.names if n not in mutants]
    if unknown:
        sys.exit(f"no mutant named {', '.join(unknown)}: see bench/mutants/mutants.toml")
    check_editable()
    rows, all_red = [], True
    for name in args.names or list(mutants):
        red, last, secs = run_mutant(name, mutants[name])
        all_red &= red
        rows.append((name, "red (caught)" if red else "GREEN (missed)", f"{secs:.0f} s", last))
        print(f"{name:45s} {rows[-1][1]:15s} {rows[-1][2]:>6s}  {last}", flush=True)
    print(f"\n{sum(r[1].startswith('red') for r in rows)} of {len(rows)} mutants caught")
    return 0 if all_red else 1


if __name__ == "__main__":
    sys.exit(main())
