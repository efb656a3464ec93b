"""A study as a page (plotly): Pareto fronts, history, knobs, failures.

``write_report`` writes the self-contained ``studies/<name>/report.html`` (plotly.js inlined: it
works offline); ``figures`` gives its plots to a notebook.  The study as data (``study_frame``,
``pareto_front``) is ``nasface.search.results``.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from nasface.core.errors import NasfaceError
from nasface.search.record import TRAINED, read
from nasface.search.results import (best_trial, knob_columns, largest_within_noise, study_frame, study_settings,
                                    within_noise_margin)


def hypervolume(points: np.ndarray) -> float:
    """Volume dominated by ``points`` (rows of objectives to maximise, each in [0, 1]) over the origin.

    Exact: slabs along the first objective, each a 2-D staircase area of the points above it.
    """
    points = np.clip(np.asarray(points, dtype=float), 0.0, None)
    points = points[np.all(points > 0, axis=1)] if len(points) else points
    if not len(points):
        return 0.0
    order = np.argsort(-points[:, 0])
    points = points[order]
    total = 0.0
    for index in range(len(points)):
        upper = points[index, 0]
        lower = points[index + 1, 0] if index + 1 < len(points) else 0.0
        if upper <= lower:
            continue
        slab = points[: index + 1, 1:]
        slab = slab[np.argsort(-slab[:, 0])]
        area, best_w = 0.0, 0.0
        for position in range(len(slab)):
            best_w = max(best_w, slab[position, 1])
            next_v = slab[position + 1, 0] if position + 1 < len(slab) else 0.0
            area += (slab[position, 0] - next_v) * best_w
        total += (upper - lower) * area
    return total


def normalised_objectives(frame: pd.DataFrame, flops_limit: float, bytes_limit: float,
                          chance: float = 0.5) -> np.ndarray:
    """(accuracy gain over chance, share of FLOPs budget left, share of memory budget left), each in [0, 1]."""
    return np.stack([(frame.accuracy.to_numpy(float) - chance) / (1 - chance),
                     1 - frame.flops.to_numpy(float) / flops_limit,
                     1 - frame.weight_bytes.to_numpy(float) / bytes_limit], axis=1)


def hypervolume_history(frame: pd.DataFrame, flops_limit: float, bytes_limit: float) -> pd.DataFrame:
    """Hypervolume of the feasible trained candidates after each trial, in trial order."""
    trained = frame[frame.kind.isin(TRAINED) & frame.feasible & frame.accuracy.notna()].sort_values("number")
    values, points = [], normalised_objectives(trained, flops_limit, bytes_limit)
    for index in range(len(trained)):
        values.append(hypervolume(points[: index + 1]))
    return pd.DataFrame({"number": trained.number.to_numpy(), "hypervolume": values})


# Below this many trained trials eta squared says little: with 3 trials a knob of 3 values explains
# all the variance whatever it does.
MIN_TRIALS_FOR_KNOBS = 10


def knob_importance(frame: pd.DataFrame) -> pd.Series:
    """Share of the accuracy variance each knob explains on its own (eta squared), trained trials only.

    A plain, assumption-light measure for small studies; fANOVA needs more trials than a CPU
    study usually has and ignores conditional knobs.  Empty below ``MIN_TRIALS_FOR_KNOBS`` trials.
    """
    trained = frame[frame.kind.isin(TRAINED) & frame.accuracy.notna()]
    knobs = knob_columns(trained)
    if len(trained) < MIN_TRIALS_FOR_KNOBS or trained.accuracy.var() == 0:
        return pd.Series(dtype=float)
    total = ((trained.accuracy - trained.accuracy.mean()) ** 2).sum()
    scores = {}
    for knob in knobs:
        groups = trained.groupby(trained[knob].astype(str)).accuracy
        between = (groups.count() * (groups.mean() - trained.accuracy.mean()) ** 2).sum()
        scores[knob] = between / total
    return pd.Series(scores).sort_values(ascending=False)


def _hover(frame: pd.DataFrame) -> list[str]:
    lines = []
    knobs = knob_columns(frame)
    for _, row in frame.iterrows():  # not itertuples: it renames the knob columns (``stages.width``)
        label = f"baseline {row.baseline}" if row.baseline else f"trial {row.number}"
        rung = "" if pd.isna(row.get("rung")) else f" (rung {int(row['rung'])})"
        choices = "".join(f"{html.escape(knob)} {html.escape(str(row[knob]))}<br>" for knob in knobs
                          if pd.notna(row[knob]))
        lines.append(
            f"<b>{html.escape(label)}</b>{rung}<br>accuracy {row.accuracy:.4f}<br>{choices}"
            f"FLOPs {int(row.flops):,}<br>MACs {int(row.macs):,}<br>"
            f"params {int(row.params):,}<br>weights {int(row.weight_bytes):,} B")
    return lines


LABEL_PX_PER_CHAR = 7  # plotly's default 12 px font: about 7 px per character
LABEL_ROW_PX = 17      # the height of one label, and the step between the rises tried
PLOT_PX = (760, 330)   # about the plotting area of a figure (width, height) on the report's page


def label_offsets(points: list[tuple[float, float, str]], x_range: tuple[float, float],
                  y_range: tuple[float, float]) -> list[tuple[float, float, str, int]]:
    """Place a label above each point so that no two labels overlap: (x, y, text, rise in px).

    Points at the same place share one label ("a / b": the two Seesaw presets cost the same).
    Going left to right, each label rises from its point by the least multiple of a label's
    height at which its box clears every box placed before; an arrow leads down to the point.
    ``x_range`` and ``y_range`` are the extents of everything the figure plots.
    """
    merged: dict[tuple[float, float], list[str]] = {}
    for x, y, text in points:
        merged.setdefault((x, y), []).append(text)

    def pixels(value: float, extent: tuple[float, float], size: int) -> float:
        return (value - extent[0]) / ((extent[1] - extent[0]) or 1.0) * size

    boxes: list[tuple[float, float, float, float]] = []  # left, right, bottom, top in px, y upwards
    placed = []
    for (x, y), texts in sorted(merged.items()):
        text = " / ".join(sorted(texts))
        centre, base = pixels(x, x_range, PLOT_PX[0]), pixels(y, y_range, PLOT_PX[1])
        half = len(text) * LABEL_PX_PER_CHAR / 2 + 4
        rise = LABEL_ROW_PX
        while any(centre - half < right and left < centre + half and base + rise < top
                  and bottom < base + rise + LABEL_ROW_PX for left, right, bottom, top in boxes):
            rise += LABEL_ROW_PX
        boxes.append((centre - half, centre + half, base + rise, base + rise + LABEL_ROW_PX))
        placed.append((x, y, text, int(rise)))
    return placed


def figures(study: optuna.Study, frame=None) -> dict:
    """The report's plotly figures by name (``frame``: the study's ``study_frame``, when the caller has it)."""
    import plotly.graph_objects as go

    frame = study_frame(study) if frame is None else frame
    settings = study_settings(study)
    budgets = settings.get("budgets", {})
    trained = frame[frame.kind.isin(TRAINED) & frame.accuracy.notna() & ~frame.superseded.astype(bool)]
    groups = {
        "within budget": trained[trained.feasible & ~trained.pareto & (trained.baseline == "")],
        "Pareto-optimal": trained[trained.pareto],
        "baseline presets": trained[trained.baseline != ""],
        "over budget (trained as reference)": trained[~trained.feasible & (trained.baseline == "")],
    }
    styles = {"within budget": dict(color="#8da0cb", size=8, symbol="circle"),
              "Pareto-optimal": dict(color="#e41a1c", size=11, symbol="diamond"),
              "baseline presets": dict(color="#222222", size=13, symbol="star"),
              "over budget (trained as reference)": dict(color="#bbbbbb", size=7, symbol="x")}
    result = {}
    axes = [("flops", "flops", f"FLOPs ({budgets.get('convention', 'lfr')})"),
            ("weight_bytes", "weight_bytes", "fp32 weight bytes")]
    if trained.latency_ms.notna().any():
        axes.append(("latency_ms", "latency_ms", f"latency (ms) predicted on {settings.get('latency')}"))
    if trained.latency_measured_ms.notna().any():
        axes.append(("latency_measured_ms", "latency_ms", f"latency (ms) measured on {settings.get('latency')}"))
    for axis, limit_key, title in axes:
        fig = go.Figure()
        for name, part in groups.items():
            if part.empty:
                continue
            fig.add_trace(go.Scatter(x=part[axis], y=part.accuracy, mode="markers", name=name, marker=styles[name],
                                     hovertext=_hover(part), hoverinfo="text"))
        baselines = groups["baseline presets"]
        xs = [*trained[axis], *([budgets[limit_key]] if budgets.get(limit_key) else [])]
        spots = label_offsets(list(zip(baselines[axis], baselines.accuracy, baselines.baseline)),
                              (min(xs, default=0), max(xs, default=1)),
                              (trained.accuracy.min(), trained.accuracy.max()) if len(trained) else (0, 1))
        for x, y, text, rise in spots:
            fig.add_annotation(x=x, y=y, text=text, ax=0, ay=-rise, showarrow=True, arrowhead=0, arrowwidth=1,
                               arrowcolor="#999999", font=dict(size=12), bgcolor="rgba(255,255,255,0.8)")
        if budgets.get(limit_key):
            # At the foot of the line: the labels of the seed networks sit above the points, near the top.
            fig.add_vline(x=budgets[limit_key], line_dash="dash", line_color="#d95f02",
                          annotation_text=f"budget {budgets[limit_key]:,}", annotation_position="bottom left",
                          annotation_font_color="#d95f02")
        fig.update_layout(title=f"Accuracy vs {title}", xaxis_title=title, yaxis_title="proxy verification accuracy",
                          template="plotly_white", height=520, margin=dict(t=60 + LABEL_ROW_PX * 3))
        fig.update_xaxes(exponentformat="SI")  # 1G, as the tool writes FLOPs (plotly's default says 1B)
        result[f"pareto_{axis}"] = fig
    fig3d = go.Figure()
    for name, part in groups.items():
        if not part.empty:
            fig3d.add_trace(go.Scatter3d(x=part.flops, y=part.weight_bytes, z=part.accuracy, mode="markers",
                                         name=name, marker={**styles[name], "size": styles[name]["size"] * 0.6,
                                                            # 3-D scatter has no star symbol
                                                            "symbol": styles[name]["symbol"].replace("star", "diamond")},
                                         hovertext=_hover(part), hoverinfo="text"))
    fig3d.update_layout(title="All three objectives", height=560, template="plotly_white",
                        scene=dict(xaxis_title="FLOPs", yaxis_title="weight bytes", zaxis_title="accuracy"))
    result["pareto_3d"] = fig3d
    if budgets.get("flops") and budgets.get("weight_bytes"):
        history = hypervolume_history(frame, budgets["flops"], budgets["weight_bytes"])
        fig = go.Figure(go.Scatter(x=history.number, y=history.hypervolume, mode="lines+markers",
                                   line_shape="hv", name="hypervolume"))
        fig.update_layout(title="Hypervolume of the feasible front over trials (reference: chance accuracy, "
                                "full budgets)", xaxis_title="trial", yaxis_title="hypervolume",
                          template="plotly_white", height=380)
        result["hypervolume"] = fig
    if frame.rung.notna().any():
        result["promotions"] = promotions_figure(frame)
    importance = knob_importance(frame)
    if not importance.empty:
        fig = go.Figure(go.Bar(x=importance.values, y=importance.index, orientation="h"))
        trained = int((frame.kind.isin(TRAINED) & frame.accuracy.notna()).sum())
        fig.update_layout(title=f"Which knobs mattered: share of accuracy variance each explains alone "
                                f"({trained} trained trials; a knob with many values explains much by chance)",
                          xaxis_title="eta squared", template="plotly_white", height=380)
        result["importance"] = fig
    return result


def promotions_figure(frame: pd.DataFrame):
    """Successive halving over the study: how many candidates have finished each rung, trial by trial."""
    import plotly.graph_objects as go

    done = frame[frame.kind.isin(TRAINED + ("failed",)) & frame.rung.notna()].sort_values("number")
    fig = go.Figure()
    for rung in sorted(done.rung.unique()):
        finished = (done.rung == rung).cumsum()
        fig.add_trace(go.Scatter(x=done.number, y=finished, mode="lines", line_shape="hv", name=f"rung {int(rung)}"))
    fig.update_layout(title="Successive halving: candidates that finished each rung", xaxis_title="trial",
                      yaxis_title="candidates", template="plotly_white", height=380)
    return fig


SETTING_SECTIONS = {"budgets": "Budgets", "data": "Data", "proxy": "Proxy training", "teacher": "Teacher",
                    "objectives": "Objectives", "space": "Search space", "fill_budget": "Fill the budget",
                    "rungs": "Successive halving: rungs (steps)", "eta": "Successive halving: eta"}


def _setting_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def settings_table(settings: dict) -> str:
    """The study's settings as an HTML table: one row per setting, grouped by section."""
    rows = []
    for key, value in settings.items():
        section = SETTING_SECTIONS.get(key, key)
        entries = value.items() if isinstance(value, dict) else [("", value)]
        for index, (name, item) in enumerate(entries):
            head = f'<th rowspan="{len(entries)}">{html.escape(section)}</th>' if index == 0 else ""
            rows.append(f"<tr>{head}<td>{html.escape(str(name).replace('_', ' '))}</td>"
                        f"<td>{html.escape(_setting_value(item))}</td></tr>")
    return f'<table class="settings">{"".join(rows)}</table>' if rows else "<p>no settings recorded</p>"


COUNTS = ("flops", "macs", "lfr_flops", "params", "weight_bytes", "activation_bytes")
SHARES = ("accuracy", "tar_at_far")


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a person reads it: counts as integers with thousands separators, accuracies to 4
    places, whole numbers without decimals, and "-" where there is no value."""
    def shown(column: str, value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        if column in COUNTS:
            return f"{int(value):,}"
        if column in SHARES:
            return f"{float(value):.4f}"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return pd.DataFrame({column: [shown(column, value) for value in table[column]] for column in table.columns})


def reason_kind(reason: str) -> str:
    """A reason without its figures, so that trials failed or rejected for the same reason group
    together ("over budget: FLOPs … > …" whatever each trial's exact FLOPs)."""
    return re.sub(r"\d[\d,._]*(?:e[+-]?\d+)?", "…", reason)


def reasons_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Failed, rejected, invalid and interrupted trials, one row per kind and reason (figures left
    out), with how many trials and the first few of them."""
    failed = frame[frame.fail_reason != ""]
    groups = failed.assign(reason=failed.fail_reason.map(reason_kind)).groupby(["kind", "reason"], dropna=False)
    rows = [{"kind": kind, "reason": reason, "trials": len(part),
             "for example": ", ".join(str(n) for n in sorted(part.number)[:5]) + (", …" if len(part) > 5 else "")}
            for (kind, reason), part in groups]
    return pd.DataFrame(rows, columns=["kind", "reason", "trials", "for example"]).sort_values(
        "trials", ascending=False, kind="stable")


def validity_paragraph(report: dict | None) -> str:
    """The study's proxy against published full training (``nasface validate``'s ``report`` of it), where
    measured."""
    from nasface.ui.validity_page import validity_sentence

    return "" if report is None else f'<p class="validity">{html.escape(validity_sentence(report))}</p>'


def pick_paragraph(study: optuna.Study, report: dict | None) -> str:
    """Where the validation ``report`` measured the proxy's seed noise: the largest trial it cannot tell
    from the most accurate, which full-scale results favour, beside the most accurate."""
    from nasface.validity.validate import seed_noise_of

    measured = seed_noise_of(report)
    if measured is None:
        return ""
    try:
        best = best_trial(study)
    except NasfaceError:  # nothing trained within the budgets yet
        return ""
    largest = largest_within_noise(study, measured[0])
    if largest.number == best.number:
        text = (f"The most accurate trial, {best.number}, is also the largest the proxy cannot tell from it "
                f"(seed noise {measured[0]:.2f} points sd, {measured[1]}).")
    else:
        flops = {t.number: read(t).cost["flops"] for t in (best, largest)}
        text = (f"The proxy cannot tell trial {largest.number} ({flops[largest.number] / 1e6:,.0f}M FLOPs) from "
                f"the most accurate, trial {best.number} ({flops[best.number] / 1e6:,.0f}M FLOPs): their accuracies "
                f"differ by less than {100 * within_noise_margin(measured[0]):.1f} points, and a network's moves "
                f"{measured[0]:.2f} points (sd) between seeds ({measured[1]}). At full scale, within a recipe, the "
                f"larger network usually scores higher: nasface export {study.study_name} --trial "
                f"largest-within-noise exports it.")
    return f'<p class="pick">{html.escape(text)}</p>'


def write_report(study: optuna.Study, path: str | os.PathLike, fidelity_dirs=()) -> Path:
    """Write the self-contained HTML report; returns its path.

    ``fidelity_dirs``: folders whose ``*/fidelity.json`` may hold a fidelity study of this study's
    proxy (``nasface fidelity``'s outputs); the page states what it measured, or that none did; and
    beside it what a ``*/validate.json`` there measured against published full training.
    """
    import plotly.io as pio

    from nasface.core.atomic import write_atomic
    from nasface.fidelity import fidelity_sentence, measured_fidelity
    from nasface.validity.validate import measured_validity

    frame = study_frame(study)  # read once: building it reads every trial's attributes
    figs = figures(study, frame)
    parts, first = [], True
    for name, fig in figs.items():
        parts.append(f'<section id="{name}">' + pio.to_html(fig, full_html=False, include_plotlyjs=first,
                                                             div_id=f"plot-{name}") + "</section>")
        first = False
    front = frame[frame.pareto]
    pareto = front[["number", "baseline", "accuracy", "tar_at_far", "flops", "macs", "params", "weight_bytes",
                    *(["rung"] if frame.rung.notna().any() else []),
                    *(knob for knob in knob_columns(front) if front[knob].notna().any())]]
    counts = frame.groupby(["kind", "state"], dropna=False).size().rename("trials").reset_index()
    reasons = reasons_table(frame)
    settings = study_settings(study)
    validity = measured_validity(settings, fidelity_dirs)  # read once: its line, and the pick from its seed noise
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nasface report: {html.escape(study.study_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
table.settings th{{text-align:left;vertical-align:top;background:#f4f4f4}}table.settings td{{text-align:left}}
table.settings td:first-of-type{{color:#555}}div.wide{{overflow-x:auto;font-size:90%}}</style></head><body>
<h1>nasface study <code>{html.escape(study.study_name)}</code></h1>
<h2>Settings</h2>
{settings_table(settings)}
<p>Accuracy is the <b>proxy</b> verification accuracy after brief training: it ranks architectures,
it does not predict their fully trained accuracy (see the README).</p>
<p class="fidelity">{fidelity_sentence(measured_fidelity(settings, fidelity_dirs), settings.get("score", "accuracy"))}</p>
{validity_paragraph(validity)}
{pick_paragraph(study, validity)}
{''.join(parts)}
<h2>Pareto-optimal trials (within budget)</h2>
{f'<div class="wide">{readable(pareto).to_html(index=False)}</div>' if not pareto.empty else "<p>none yet</p>"}
<h2>Trials by kind and state</h2>{counts.to_html(index=False)}
<h2>Failed and rejected trials, by reason</h2>
{f'<div class="wide">{reasons.to_html(index=False)}</div>' if not reasons.empty else "<p>none</p>"}
</body></html>"""
    path = Path(path)
    write_atomic(path, page)
    return path
