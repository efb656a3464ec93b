"""BENCHMARKS.md's tables for a fidelity study, written from its ``fidelity.json`` (no transcription).

    python benchmarks/fidelity_tables.py benchmarks/results/fidelity-synthetic --tau-goal 0.8
    python benchmarks/fidelity_tables.py benchmarks/results/fidelity-orl --tau-goal 0.7

Prints markdown: every signal's agreement with the reference (tau with its interval, tau within
the FLOPs terciles, the paired differences to FLOPs and to parameters alone, the regret under a
FLOPs budget), each budget's CPU cost beside its tau, the noise ceiling, and the issue's goals
for the search's score, each marked met or missed with the number that decides it.  Nothing is
trained; it reads what ``nasface fidelity --analyse`` wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasface.fidelity import (CEILING_MARGIN, TRADEOFF_COLUMNS, TRIVIAL, by_size_text, modelled_text,  # noqa: E402
                              regret_text, shortest_trusted_text, tradeoff_cells, versus_text)
from nasface.fidelity.report import Agreement, FidelityReport  # noqa: E402
from nasface.fidelity.verdict import signal_label, strata_text  # noqa: E402

LOWER_BOUND_GOAL, STRATA_GOAL = 0.6, 0.5


def _interval(pair) -> str:
    return "n/a" if not pair else f"[{pair[0]:+.2f}, {pair[1]:+.2f}]"


def signal_table(report: FidelityReport) -> list[str]:
    header = (f"| signal at the proxy ({report.proxy_steps} steps) | Kendall tau against "
              f"{report.reference_steps} steps [95 % CI] | tau within FLOPs terciles | tau - FLOPs alone | "
              f"tau - parameters alone | regret (points) | top pick's regret |")
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows: list[tuple[str, Agreement]] = [(signal_label(name, row), row) for name, row in report.available().items()]
    if report.combined:
        rows.append(("combined (leave-one-out)", report.combined))
    rows += [(f"accuracy at {steps} steps", row) for steps, row in report.budgets.items()
             if int(steps) != report.proxy_steps]
    for label, row in rows:
        cells = (label, f"{row.tau:+.2f} {_interval(row.tau_ci)}", strata_text(row),
                 *(versus_text(row, baseline) for baseline in TRIVIAL), *regret_text(row))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def tradeoff_table(report: FidelityReport) -> list[str]:
    lines = ["| " + " | ".join(TRADEOFF_COLUMNS) + " |", "| --- |" + " ---: |" * (len(TRADEOFF_COLUMNS) - 1)]
    shortest = shortest_trusted_text(report)
    return (lines + ["| " + " | ".join(cells) + " |" for cells in tradeoff_cells(report)]
            + ([] if shortest is None else ["", f"{shortest[0].upper()}{shortest[1:]}."]))


def ceiling_lines(report: FidelityReport) -> list[str]:
    ceiling = report.noise_ceiling
    if ceiling is None:
        return ["Noise ceiling: not measured."]
    lines = []
    if ceiling.reference is not None:
        lines.append(f"Noise ceiling, seed 0 against seed 1 of the reference on the {ceiling.pairs} architectures "
                     f"trained twice: tau {ceiling.reference.tau:+.2f} {_interval(ceiling.reference.tau_ci)}.")
    modelled = []
    if ceiling.modelled is not None:
        modelled.append(modelled_text(ceiling.modelled))
    if ceiling.modelled_by_size is not None:
        modelled.append(by_size_text(ceiling.modelled_by_size))
    lines += [f"{text[0].upper()}{text[1:]}." for text in modelled]
    if ceiling.differences:
        pairs = sorted(ceiling.differences, key=lambda pair: pair.flops)
        each = (f"{pair.arch} ({pair.flops / 1e6:.0f}M) {100 * pair.reference:+.2f}" for pair in pairs)
        lines.append(f"Seed 0 minus seed 1 at the reference, by FLOPs: {', '.join(each)} points.")
    if not lines:
        lines.append(f"Noise ceiling: {ceiling.note or 'not measured'}.")
    return lines


def goal_table(report: FidelityReport, score: str, tau_goal: float) -> list[str]:
    row = report.signals[score]
    low = (row.tau_ci or [float("nan")])[0]
    strata = row.strata.mean_tau
    modelled = None if report.noise_ceiling is None else report.noise_ceiling.modelled

    def mark(met: bool | None) -> str:
        return "not known" if met is None else ("met" if met else "**missed**")

    def above(baseline: str) -> tuple[str, bool | None]:
        versus = row.versus.get(baseline)
        if versus is None or not versus.ci:
            return "n/a", None
        return f"{versus.tau_minus:+.2f} {_interval(versus.ci)}", versus.ci[0] > 0

    # three decimals where a goal is decided, so that a miss by 0.002 does not read as a hit
    goals = [(f"tau >= {tau_goal}", f"{row.tau:+.3f}", row.tau >= tau_goal),
             (f"lower 95 % bound >= {LOWER_BOUND_GOAL}", f"{low:+.3f}", low >= LOWER_BOUND_GOAL),
             (f"tau within the FLOPs strata >= {STRATA_GOAL}", "n/a" if strata is None else f"{strata:+.3f}",
              None if strata is None else strata >= STRATA_GOAL)]
    if modelled:
        goals.append((f"within {CEILING_MARGIN} of the noise ceiling (modelled)",
                      f"{row.tau:+.3f} against {modelled.tau:+.3f}",
                      row.tau >= modelled.tau - CEILING_MARGIN))
    else:
        goals.append((f"within {CEILING_MARGIN} of the noise ceiling", "fewer than 4 pairs", None))
    for baseline, label in (("log_flops", "FLOPs"), ("log_params", "parameters")):
        text, met = above(baseline)
        goals.append((f"above {label} alone, interval above zero", text, met))
    lines = [f"| goal ({score}, {report.measured} architectures) | measured | |", "| --- | --- | --- |"]
    lines += [f"| {goal} | {measured} | {mark(met)} |" for goal, measured, met in goals]
    return lines


def tables(report: FidelityReport, score: str, tau_goal: float) -> str:
    if report.note:
        return report.note
    if score not in report.available():
        raise SystemExit(f"the study has no measured signal {score!r}: give one of {', '.join(report.available())}")
    return "\n".join([*signal_table(report), "", *tradeoff_table(report), "", *ceiling_lines(report), "",
                      *goal_table(report, score, tau_goal)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="A fidelity study's output folder (holding fidelity.json).")
    parser.add_argument("--score", default="accuracy", help="The search's score, whose goals are checked.")
    parser.add_argument("--tau-goal", type=float, default=0.8, help="The Kendall tau the score should reach.")
    args = parser.parse_args(argv)
    path = args.folder / "fidelity.json"
    try:
        report = FidelityReport.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"{path}: cannot read a fidelity analysis ({error}); run nasface fidelity --analyse first")
    print(tables(report, args.score, args.tau_goal))


if __name__ == "__main__":
    sys.exit(main())
