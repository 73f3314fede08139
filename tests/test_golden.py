"""`hwbench run`'s output keeps its shape: result.json's key paths and summary.txt's field names,
for the null and cpu backends in all four scenarios, in performance and accuracy modes, equal to
the golden list recorded on main before the house was rearranged (tests/golden/make_golden.py)."""
from __future__ import annotations

import json

from golden.make_golden import GOLDEN, shapes


def test_run_output_has_the_golden_shape():
    golden = json.loads(GOLDEN.read_text())
    now = shapes()
    assert set(now) == set(golden)
    for combo, want in golden.items():
        got = now[combo]
        assert got["exit"] == want["exit"], combo
        assert got["summary"] == want["summary"], combo
        missing = sorted(set(want["result"] or []) - set(got["result"] or []))
        extra = sorted(set(got["result"] or []) - set(want["result"] or []))
        assert (missing, extra) == ([], []), combo
