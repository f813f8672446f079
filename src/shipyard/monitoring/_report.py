"""The result of comparing a window with a reference: per column, then for the dataset.

``DriftReport.to_dict()``::

    {"drift_share": 0.25,
     "columns": {"income": {"test": "wasserstein", "statistic": 0.31, "p_value": None,
                            "threshold": 0.1, "drift": True, "status": "ok"}, ...}}

``drift_share`` is the share of tested columns (those with a statistic) that
drifted; 0.0 when none could be tested. ``to_html(path)`` writes one
self-contained page (inline CSS and SVG, no script, nothing fetched) with a
reference/current histogram pair per column; every name and value is escaped.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STATUSES", "ColumnDrift", "DriftReport", "Histogram"]

#: Every status a column can have, and what it means.
STATUSES = {
    "ok": "tested",
    "constant": "tested; the reference has a single value, so any other value is drift",
    "unseen_categories": "tested; the window has categories the reference lacks",
    "missing_column": "not tested: the column is not in the current data",
    "empty": "not tested: the current data has no rows",
    "all_null": "not tested: the column has no usable value in the current data (null, NaN, inf)",
    "reference_all_null": "not tested: the column has no usable value in the reference",
    "too_few_rows": "not tested: fewer usable values than the test needs",
    "type_mismatch": "not tested: the column is numeric on one side and categorical on the other",
    "unsupported_type": "not tested: no drift test reads this type (dates, binary, nested)",
}


@dataclass(frozen=True)
class Histogram:
    """Shares of each side over shared bins: numeric ``edges`` or category ``labels``."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    test: str | None
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drift: bool
    status: str
    kind: str | None = None
    histogram: Histogram | None = None

    @property
    def tested(self) -> bool:
        return self.statistic is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "threshold": self.threshold,
            "drift": self.drift,
            "status": self.status,
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column results in column order, and the share of tested columns that drifted."""

    columns: dict[str, ColumnDrift]
    reference_rows: int
    current_rows: int

    @property
    def drift_share(self) -> float:
        tested = [c for c in self.columns.values() if c.tested]
        return sum(c.drift for c in tested) / len(tested) if tested else 0.0

    @property
    def drifted(self) -> list[str]:
        """Names of the columns that drifted."""
        return [name for name, c in self.columns.items() if c.drift]

    def __getitem__(self, column: str) -> ColumnDrift:
        return self.columns[column]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN or infinity); see the module docstring for the shape."""
        return {
            "drift_share": self.drift_share,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
        }

    def to_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML page; return its path."""
        from shipyard._files import atomic_open

        target = Path(path)
        with atomic_open(target) as out:
            out.write(_page(self).encode("utf-8"))
        return target


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}
.drift{color:#b00020;font-weight:600}.col{display:inline-block;margin:0 2em 2em 0;vertical-align:top}
.ref{fill:#5b7fa6}.cur{fill:#e08a2c}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
svg text{font-size:10px;fill:#555}
"""


def _page(report: DriftReport) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(name)}</td><td>{e(c.test or '-')}</td><td>{_number(c.statistic)}</td>"
        f"<td>{_number(c.p_value)}</td><td>{_number(c.threshold)}</td>"
        f"<td class='{'drift' if c.drift else ''}'>{'yes' if c.drift else 'no'}</td>"
        f"<td>{e(c.status)}</td></tr>"
        for name, c in report.columns.items()
    )
    charts = "".join(
        f"<div class='col'><h3>{e(name)}</h3><p>{e(c.test or '')} {_number(c.statistic)}"
        f"{' — drift' if c.drift else ''} ({e(c.status)})</p>{_svg(c.histogram)}</div>"
        for name, c in report.columns.items()
    )
    drifted = len(report.drifted)
    tested = sum(c.tested for c in report.columns.values())
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Shipyard drift report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Drift report</h1>"
        f"<p>Reference: {report.reference_rows:,} rows; current: {report.current_rows:,} rows. "
        f"Drift in {drifted} of {tested} tested columns (share {report.drift_share:.2f}).</p>"
        "<table><tr><th>column</th><th>test</th><th>statistic</th><th>p-value</th>"
        f"<th>threshold</th><th>drift</th><th>status</th></tr>{rows}</table>"
        "<p class='legend'><span class='ref' style='background:#5b7fa6'></span>reference"
        "<span class='cur' style='background:#e08a2c'></span>current</p>"
        f"{charts}</body></html>"
    )


def _svg(histogram: Histogram | None) -> str:
    if histogram is None or not histogram.reference:
        return "<p>no histogram</p>"
    width, height, pad = 320, 120, 14
    bins = len(histogram.reference)
    top = max(max(histogram.reference), max(histogram.current), 1e-12)
    step = width / bins
    bars = []
    for i, (r, c) in enumerate(zip(histogram.reference, histogram.current, strict=True)):
        x = i * step
        for share, cls, offset in ((r, "ref", 0.1), (c, "cur", 0.5)):
            h = (height - pad) * share / top
            bars.append(
                f"<rect class='{cls}' x='{x + offset * step:.1f}' y='{height - pad - h:.1f}' "
                f"width='{0.4 * step:.1f}' height='{h:.1f}'><title>{html.escape(histogram.labels[i])}: "
                f"{share:.1%}</title></rect>"
            )
    first, last = html.escape(histogram.labels[0]), html.escape(histogram.labels[-1])
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img'>{''.join(bars)}<text x='0' y='{height - 2}'>{first}</text>"
        f"<text x='{width}' y='{height - 2}' text-anchor='end'>{last}</text></svg>"
    )
