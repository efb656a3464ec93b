"""``validate.html``: the proxy's score against the published score, one panel per group (offline plotly)."""

from __future__ import annotations

import html
import math
from pathlib import Path

from nasface.core.atomic import write_atomic
from nasface.validity.validate import score_scale

PREDICTOR_NAMES = {"proxy": "proxy score", "flops": "FLOPs alone", "params": "parameters alone"}


def pairs_text(row: dict) -> str:
    """'orders X of Y (tau T)' for one predictor's row of the analysis."""
    if not row["counted"]:
        return "no counted pair"
    tau = "" if row.get("tau") is None else f" (tau {row['tau']:+.2f})"
    return f"{row['ordered']:g} of {row['counted']}{tau}"


def summary_line(report: dict) -> str:
    overall = report["overall"]
    noise = overall["seed_noise"]
    unit = score_scale(report.get("score", "accuracy"))[1]
    spread = "" if noise["std_points_mean"] is None else (
        f"; seed noise: a network's {report.get('score', 'accuracy')} spreads {noise['std_points_mean']:.2f} {unit} (sd) over its seeds on "
        f"average, {noise['std_points_max']:.2f} at most")
    similar = overall.get("similar_size")  # absent from reports written before it was counted
    within = "" if not similar or not similar["proxy"]["counted"] else (
        f". Of them, the pairs within {similar['flops_ratio']:g}x in FLOPs (where size cannot decide): "
        + "; ".join(f"{PREDICTOR_NAMES[name]} {pairs_text(similar[name])}" for name in PREDICTOR_NAMES))
    return (f"{report['runs_logged']} of {report['runs_planned']} runs logged. Published pairs ordered as published: "
            + "; ".join(f"{PREDICTOR_NAMES[name]} {pairs_text(overall[name])}" for name in PREDICTOR_NAMES)
            + within + spread + f". Without training, the table's printed FLOPs order "
            f"{pairs_text(overall['printed_flops'])} of the pairs of all its networks that have FLOPs printed.")


def group_rows(report: dict) -> list[tuple[str, ...]]:
    """One row of text per group: id, networks trained, counted pairs, then each predictor's pairs and tau."""
    rows = []
    for group in report["groups"]:
        rows.append((group["id"], f"{group['trained']} of {group['size']}", str(group["proxy"]["counted"]),
                     *(pairs_text(group[name]) for name in PREDICTOR_NAMES),
                     "" if group["seed_std_mean"] is None else f"{group['seed_std_mean']:.2f}",
                     _similar_cell(group),
                     {True: "yes", False: "no", None: ""}[group.get("largest_above_smallest")],
                     "" if group["printed_flops"] is None else
                     f"{pairs_text(group['printed_flops'])} ({group['printed_flops']['networks']} networks)"))
    return rows


def _similar_cell(group: dict) -> str:
    """'proxy / FLOPs / parameters of N' over the group's pairs of similar size; empty where it has none."""
    similar = group.get("similar_size")
    if not similar or not similar["proxy"]["counted"]:
        return ""
    return " / ".join(f"{similar[name]['ordered']:g}" for name in PREDICTOR_NAMES) + f" of {similar['proxy']['counted']}"


GROUP_COLUMNS = ("group", "trained", "counted pairs", *(PREDICTOR_NAMES[n] for n in PREDICTOR_NAMES),
                 "seed sd", "similar size: proxy / FLOPs / params", "largest above smallest",
                 "printed FLOPs, all networks")


def write_page(report: dict, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    shown = [g for g in report["groups"] if g["trained"] >= 1]
    table = ("<table border=1 cellpadding=4><tr>" + "".join(f"<th>{c}</th>" for c in GROUP_COLUMNS) + "</tr>"
             + "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                       for row in group_rows(report)) + "</table>")
    header = (f"<h1>Validity against published full training</h1><p>{html.escape(summary_line(report))}</p>"
              f"<p>Published results: {html.escape(report['published'])}. A group's published score is the mean of "
              f"its hard benchmarks; pairs closer than 0.3 points are ties, not counted.</p>{table}")
    if not shown:
        write_atomic(path, f"<html><head><meta charset='utf-8'></head><body>{header}"
                           f"<p>no published network measured yet</p></body></html>\n")
        return
    columns = min(3, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[
        f"{g['id']}: {pairs_text(g['proxy'])}" for g in shown])
    score = report.get("score", "accuracy")
    scale, unit = score_scale(score)
    for index, group in enumerate(shown):
        trained = [n for n in group["networks"] if n["proxy"] is not None]
        figure.add_trace(go.Scatter(
            x=[n["published"] for n in trained], y=[scale * n["proxy"] for n in trained], mode="markers+text",
            text=[n["preset"] for n in trained], textposition="top center", showlegend=False,
            error_y={"type": "data", "array": [n["seed_std"] or 0 for n in trained], "visible": True},
            hovertemplate="%{text}<br>published %{x:.2f}<br>proxy %{y:.2f}<extra></extra>"),
            row=index // columns + 1, col=index % columns + 1)
        figure.update_xaxes(title_text=f"published ({', '.join(group['score_metrics'])})",
                            row=index // columns + 1, col=index % columns + 1)
        figure.update_yaxes(title_text=f"proxy {score}" + (" (%)" if unit == "points" else ""), row=index // columns + 1, col=index % columns + 1)
    figure.update_layout(height=380 * rows, width=1200, margin={"t": 60})
    write_atomic(path, f"<html><head><meta charset='utf-8'></head><body>{header}"
                       + figure.to_html(full_html=False, include_plotlyjs=True) + "</body></html>\n")


def validity_sentence(report: dict) -> str:
    """One line for a study's report: how many published pairs its proxy orders as published."""
    overall = report["overall"]
    proxy, flops, params = overall["proxy"], overall["flops"], overall["params"]
    if not proxy["counted"]:
        return (f"Validity against published full training: no published pair measured yet "
                f"({report['runs_logged']} of {report['runs_planned']} runs, {report['path']}).")
    tau = "" if proxy["tau"] is None else f", Kendall tau {proxy['tau']:.2f} with the published scores"
    similar = overall.get("similar_size")
    within = "" if not similar or not similar["proxy"]["counted"] else (
        f"; of the {similar['proxy']['counted']} pairs within {similar['flops_ratio']:g}x in FLOPs it orders "
        f"{similar['proxy']['ordered']:g} (FLOPs alone {similar['flops']['ordered']:g}, parameters alone "
        f"{similar['params']['ordered']:g})")
    return (f"Validity against published full training: this proxy orders {proxy['ordered']:g} of "
            f"{proxy['counted']} published pairs as published{tau}; FLOPs alone {flops['ordered']:g}, parameters "
            f"alone {params['ordered']:g}{within} ({report['runs_logged']} of {report['runs_planned']} runs, "
            f"{report['path']}).")
