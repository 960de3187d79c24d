"""Output: the aligned table, JSON lines, and a diff of two replies."""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterable
from typing import Any, TextIO

from bench.load import Result

_COLUMNS = [  # header, width, getter
    ("target", 9, lambda r: r.target),
    ("function", 34, lambda r: r.function),
    ("label", 22, lambda r: r.label),
    ("conc", 4, lambda r: r.concurrency),
    ("calls/s", 8, lambda r: f"{r.calls_per_s:,.0f}"),
    ("p50 ms", 7, lambda r: f"{r.p50_ms:.2f}"),
    ("p99 ms", 7, lambda r: f"{r.p99_ms:.2f}"),
    ("err", 4, lambda r: r.errors),
    ("xfloor/s", 8, lambda r: "" if r.ratio_calls_per_s is None else f"{r.ratio_calls_per_s:.2f}"),
    ("xfl p50", 7, lambda r: "" if r.ratio_p50 is None else f"{r.ratio_p50:.2f}"),
    ("cpu ms/call", 11, lambda r: f"{r.server_cpu_ms_per_call:.2f}"),
    ("xfl cpu", 7, lambda r: "" if r.ratio_cpu_per_call is None else f"{r.ratio_cpu_per_call:.2f}"),
    ("srv cpu", 7, lambda r: f"{r.server_cpu_pct:.0f}%"),
    ("cli cpu", 7, lambda r: f"{r.client_cpu_pct:.0f}%"),
    ("host cpu", 8, lambda r: f"{r.machine_cpu_pct:.0f}%"),
    ("wr/call", 7, lambda r: f"{r.server_writes_per_call:.1f}"),
    ("wk", 2, lambda r: r.workers),
    ("rss MB", 6, lambda r: f"{r.rss_mb:.1f}"),
    ("peak MB", 7, lambda r: f"{r.rss_peak_mb:.1f}"),
]
_STATUS_FROM = 4  # columns from here are replaced by the status of a failed measurement


def table(results: Iterable[Result]) -> str:
    results = list(results)
    show_label = any(r.label for r in results)
    cols = [c for c in _COLUMNS if show_label or c[0] != "label"]
    status_from = _STATUS_FROM - (0 if show_label else 1)
    head = "  ".join(h.rjust(w) if i >= status_from - 1 else h.ljust(w)
                     for i, (h, w, _) in enumerate(cols))
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for i, (_, w, get) in enumerate(cols):
            if r.status != "ok" and i == status_from:
                cells.append(r.status)
                break
            text = str(get(r))
            cells.append(text.rjust(w) if i >= status_from - 1 else text.ljust(w))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


_SPREAD = ("calls_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_call", "client_cpu_pct",
           "machine_cpu_pct")


def medians(results: Iterable[Result]) -> list[Result]:
    """One result per target, function and concurrency: the median of its rounds, with
    each figure's min and max in ``extra`` (``<figure>_min``, ``<figure>_max``)."""
    groups: dict[tuple[str, str, int], list[Result]] = {}
    for r in results:
        if r.status == "ok":
            groups.setdefault((r.target, r.function, r.concurrency), []).append(r)
    out = []
    for rounds in groups.values():
        first = rounds[0]
        values: dict[str, float] = {}
        extra = dict(first.extra, rounds=len(rounds))
        for name in _SPREAD:
            column = [getattr(r, name) for r in rounds]
            values[name] = statistics.median(column)
            extra[f"{name}_min"], extra[f"{name}_max"] = min(column), max(column)
        out.append(dataclasses.replace(
            first, mode="median", label=f"median of {len(rounds)}", errors=sum(
                r.errors for r in rounds), extra=extra, **values))
    return out


def _spread(name: str, fmt: str) -> Any:
    def get(r: Result) -> str:
        return (fmt.format(r.extra[f"{name}_min"]) + "-" + fmt.format(r.extra[f"{name}_max"])
                if f"{name}_min" in r.extra else "")
    return get


_MEDIAN_COLUMNS = [
    ("target", 9, lambda r: r.target),
    ("function", 34, lambda r: r.function),
    ("conc", 4, lambda r: r.concurrency),
    ("calls/s", 8, lambda r: f"{r.calls_per_s:,.0f}"),
    ("min-max", 11, _spread("calls_per_s", "{:,.0f}")),
    ("p50 ms", 7, lambda r: f"{r.p50_ms:.2f}"),
    ("min-max", 11, _spread("p50_ms", "{:.2f}")),
    ("cpu ms/call", 11, lambda r: f"{r.server_cpu_ms_per_call:.2f}"),
    ("min-max", 11, _spread("server_cpu_ms_per_call", "{:.2f}")),
    ("xfloor/s", 8, lambda r: "" if r.ratio_calls_per_s is None else f"{r.ratio_calls_per_s:.2f}"),
    ("xfl p50", 7, lambda r: "" if r.ratio_p50 is None else f"{r.ratio_p50:.2f}"),
    ("xfl cpu", 7, lambda r: "" if r.ratio_cpu_per_call is None else f"{r.ratio_cpu_per_call:.2f}"),
    ("host cpu", 8, lambda r: f"{r.machine_cpu_pct:.0f}%"),
    ("err", 4, lambda r: r.errors),
]


def median_table(results: Iterable[Result]) -> str:
    """The medians of interleaved rounds with the spread (min-max) of each figure."""
    head = "  ".join(h.rjust(w) if i >= 2 else h.ljust(w)
                     for i, (h, w, _) in enumerate(_MEDIAN_COLUMNS))
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append("  ".join(str(get(r)).rjust(w) if i >= 2 else str(get(r)).ljust(w)
                               for i, (_, w, get) in enumerate(_MEDIAN_COLUMNS)).rstrip())
    return "\n".join(lines)


def json_lines(results: Iterable[Result], out: TextIO) -> None:
    for r in results:
        out.write(json.dumps(r.to_json(), default=str) + "\n")


def diff(left: Any, right: Any, path: str = "$", limit: int = 20,
         names: tuple[str, str] = ("conductor", "floor")) -> list[str]:
    """Where two decoded replies differ, one line per difference (at most ``limit``)."""
    out: list[str] = []
    _diff(left, right, path, out, names)
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more differences"]
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 60 else text


def _diff(a: Any, b: Any, path: str, out: list[str], names: tuple[str, str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() - b.keys():
            out.append(f"{path}.{key}: only in {names[0]} ({_show(a[key])})")
        for key in b.keys() - a.keys():
            out.append(f"{path}.{key}: only in {names[1]} ({_show(b[key])})")
        for key in a.keys() & b.keys():
            _diff(a[key], b[key], f"{path}.{key}", out, names)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items in {names[0]}, {len(b)} in {names[1]}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}[{i}]", out, names)
        return
    if a != b or type(a) is not type(b):
        out.append(f"{path}: {names[0]} {_show(a)} ({type(a).__name__}) != "
                   f"{names[1]} {_show(b)} ({type(b).__name__})")
