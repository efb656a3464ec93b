"""The fidelity study's HTML page (``fidelity.html``): each signal against the reference, one
panel each, and the tables of ``nasface.fidelity.verdict`` (offline plotly)."""

from __future__ import annotations

import math
from pathlib import Path

from nasface.core.atomic import write_atomic
from nasface.fidelity.analysis import TRIVIAL
from nasface.fidelity.report import FidelityReport
from nasface.fidelity.verdict import (TRADEOFF_COLUMNS, interval_text, regret_note, regret_text, shortest_trusted_text,
                                      strata_text, tradeoff_cells, versus_text)

def write_page(report: FidelityReport, path: Path) -> None:
    """Proxy signal against the reference, one panel per signal, as one offline HTML page."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    available = report.available()
    names = list(available)
    header = (f"<h1>Proxy fidelity</h1><p>{report.measured} of {report.architectures} architectures measured; "
              f"proxy {report.proxy_steps} steps, reference {report.reference_steps} steps.</p>")
    if not names:
        write_atomic(path, f"<html><body>{header}<p>{report.note or 'nothing measured yet'}</p></body></html>\n")
        return
    columns = 4
    rows = math.ceil(len(names) / columns)
    titles = [f"{name}: tau {row.tau:+.2f}" + (f" ({row.measured} archs)" if row.partial else "")
              for name, row in available.items()]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles)
    points = report.points or {}
    for index, name in enumerate(names):
        xs, ys, labels = points.get(name, ([], [], []))
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="markers", text=labels, showlegend=False,
                                    hovertemplate="%{text}<br>signal %{x:.4g}<br>reference %{y:.4f}<extra></extra>"),
                         row=index // columns + 1, col=index % columns + 1)
    figure.update_layout(height=260 * rows, width=1200, margin={"t": 40})
    rows_html = "".join(
        f"<tr><td>{n}</td><td>{interval_text(r)}</td>"
        f"<td>{r.rho:+.2f}</td><td>{strata_text(r)}</td><td>{r.top5_in_top10:.1f}</td>"
        + "".join(f"<td>{versus_text(r, base)}</td>" for base in TRIVIAL)
        + "".join(f"<td>{text}</td>" for text in regret_text(r)) + "</tr>"
        for n, r in available.items() if r.tau_ci)
    body = (f"<html><head><meta charset='utf-8'></head><body>{header}<table border=1 cellpadding=4>"
            f"<tr><th>signal (at the proxy's budget)</th><th>Kendall tau [95 % CI]</th><th>Spearman rho</th>"
            f"<th>mean tau within FLOPs strata</th><th>top-5 in top-10</th><th>tau - FLOPs alone [95 % CI]</th>"
            f"<th>tau - parameters alone [95 % CI]</th><th>regret under FLOPs budgets (points)</th>"
            f"<th>top pick's regret (points)</th></tr>{rows_html}</table><p>{regret_note(report)}</p>"
            + _tradeoff_html(report) + figure.to_html(full_html=False, include_plotlyjs=True) + "</body></html>\n")
    write_atomic(path, body)


def _tradeoff_html(report: FidelityReport) -> str:
    """The proxy's length: each budget's CPU cost per architecture beside its tau and regret."""
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
                   for cells in tradeoff_cells(report))
    if not rows:
        return ""
    shortest = shortest_trusted_text(report)
    return ("<h2>The proxy's length</h2><table border=1 cellpadding=4><tr>"
            + "".join(f"<th>{name}</th>" for name in TRADEOFF_COLUMNS) + f"</tr>{rows}</table>"
            + ("" if shortest is None else f"<p>{shortest[0].upper()}{shortest[1:]}.</p>"))
