"""``hwbench list`` through the CLI: every backend, usable here or not and why."""
from __future__ import annotations

from cli_helpers import cli
from hwbench import backends


def test_list_explains_every_backend(capsys):
    code, out, _ = cli(capsys, "list")
    assert code == 0
    section = out[out.index("Backends"):]
    rows = {line.split()[0]: line for line in section.splitlines()[3:] if line.strip()
            and not line.startswith(" ") and not line.endswith(":")}
    assert set(backends.names()) <= set(rows)
    for name in backends.names():
        cls = backends.backend_class(name)
        a = cls.availability()
        assert ("usable" if a.usable else "unusable") == rows[name].split()[1]
        for p in a.precisions:
            assert p in rows[name]
        block = section[section.index(f"\n{name}:\n"):]
        if not a.usable:  # the reason and the fix, right under the backend's name
            assert f"not usable here: {a.reason}" in block and f"fix: {a.install}" in block
        for o in cls.options:
            assert f"--backend-opt {o.name}={o.default}" in block
    assert "cpu" in rows["cpu"].split()[2]
