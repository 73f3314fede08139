"""One table, four readers: the terminal, a spreadsheet (CSV), a wiki (Markdown), a browser (HTML).

HTML pages are self-contained: inline CSS, no scripts or fonts fetched from anywhere.
"""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from hwbench.errors import UsageError
from hwbench.tables import format_value, table

CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:4px 8px}
th{background:#f0f0f0;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555}.pass{color:#080;font-weight:bold}.fail{color:#b00;font-weight:bold}
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.5em}h3{font-size:1.05em}pre{background:#f7f7f7;padding:8px;overflow:auto}
svg{max-width:100%;height:auto;display:block;margin:.5em 0}"""


@dataclass
class Table:
    title: str
    headers: Sequence[str]
    rows: list[list[object]]
    notes: list[str] = field(default_factory=list)

    def compact(self) -> "Table":
        """Without the columns that hold nothing in any row (a note says why they are empty)."""
        keep = [i for i in range(len(self.headers)) if any(r[i] is not None for r in self.rows)]
        return Table(self.title, [self.headers[i] for i in keep],
                     [[r[i] for i in keep] for r in self.rows], self.notes)


def terminal(tables: Sequence[Table]) -> str:
    parts = []
    for t in (t.compact() for t in tables):
        parts.append(table(t.headers, t.rows, title=t.title))
        parts += [f"  {n}" for n in t.notes]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def to_csv(tables: Sequence[Table]) -> str:
    """One CSV: a leading 'table' column names the table each row belongs to."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if tables:
        w.writerow(["table", *tables[0].headers])
    for t in tables:
        for row in t.rows:
            w.writerow([t.title, *("" if v is None else v for v in row)])
    return buf.getvalue()


def to_markdown(tables: Sequence[Table]) -> str:
    out = []
    for t in (t.compact() for t in tables):
        out += [f"### {t.title}", "", "| " + " | ".join(t.headers) + " |",
                "|" + "|".join(" --- " for _ in t.headers) + "|"]
        out += ["| " + " | ".join(format_value(v).replace("|", "\\|") for v in r) + " |"
                for r in t.rows]
        out += [""] + [f"- {n}" for n in t.notes] + [""]
    return "\n".join(out)


def html_table(t: Table) -> str:
    """A titled table; a table without headers (key, value pairs) gets no header row."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    head = f"<tr>{head}</tr>" if any(t.headers) else ""
    title = f"<h3>{html.escape(t.title)}</h3>" if t.title else ""
    body = "".join("<tr>" + "".join(_td(v) for v in r) + "</tr>" for r in t.rows)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in t.notes)
    return (f"{title}<table>{head}{body}</table>"
            + (f"<ul class='note'>{notes}</ul>" if notes else ""))


def _td(v: object) -> str:
    text = format_value(v)
    cls = {"PASS": "pass", "FAIL": "fail"}.get(text.split(" ")[0], "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        cls = "num"
    return f"<td class='{cls}'>{html.escape(text)}</td>" if cls else f"<td>{html.escape(text)}</td>"


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def to_html(tables: Sequence[Table], title: str) -> str:
    return page(title, "".join(html_table(t.compact()) for t in tables))


def write_new(path: str | Path, text: str) -> Path:
    """Writes a new file; never overwrites one (results and reports are never overwritten)."""
    p = Path(path)
    if p.exists():
        raise UsageError(f"{p} already exists: give a new file name")
    if not p.parent.is_dir():
        raise UsageError(f"{p.parent} is not a directory: create it or give another path")
    p.write_text(text)
    return p
