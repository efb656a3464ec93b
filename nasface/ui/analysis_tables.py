"""The analyses of ``nasface fidelity`` and ``nasface validate`` as console tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:
    from nasface.fidelity.report import FidelityReport


def print_fidelity(report: FidelityReport, console: Console) -> None:
    """The analysis as a table: each signal's agreement with the reference."""
    from nasface.fidelity import (TRADEOFF_COLUMNS, TRIVIAL, by_size_text, modelled_text, regret_note, regret_text,
                                  shortest_trusted_text, tradeoff_cells, versus_text)
    from nasface.fidelity.verdict import interval_text, signal_label, strata_text

    console.print(f"{report.measured} of {report.architectures} architectures measured "
                  f"(proxy {report.proxy_steps} steps, reference {report.reference_steps})")
    if report.note:
        console.print(report.note)
        return
    table = Table(Column("signal", no_wrap=True), "Kendall tau [95 % CI]", "rho", "tau in FLOPs strata",
                  "top-5 in top-10", "tau - FLOPs [95 % CI]", "tau - params [95 % CI]",
                  "regret under FLOPs budgets", "top pick's regret")
    rows = [(signal_label(n, r), r) for n, r in report.available().items()]
    rows += [(f"accuracy at {steps} steps", r) for steps, r in report.budgets.items()]
    if report.combined:
        rows.append(("combined (leave-one-out)", report.combined))
    for name, row in rows:
        table.add_row(name, interval_text(row), f"{row.rho:+.2f}", strata_text(row), f"{row.top5_in_top10:.1f}",
                      *(versus_text(row, base) for base in TRIVIAL), *regret_text(row))
    # a log or a pipe gets the tables unwrapped; a terminal gets them at its width
    wide = console if console.is_terminal else Console(width=max(console.width, 200))
    wide.print(table)
    console.print("tau - FLOPs / params: the paired bootstrap difference to FLOPs alone / parameters alone; "
                  "a score must beat both")
    note = regret_note(report)
    if note:
        console.print(note)
    tradeoff = Table(*TRADEOFF_COLUMNS, title="the proxy's length: what each budget costs and how it ranks")
    for cells in tradeoff_cells(report):
        tradeoff.add_row(*cells)
    wide.print(tradeoff)
    shortest = shortest_trusted_text(report)
    if shortest:
        console.print(shortest)
    for name, row in report.available().items():
        paired = row.paired
        if paired:
            ci = paired.tau_minus_other_ci or [float("nan")] * 2
            console.print(f"{name} against {paired.rival} on the same {row.measured} architectures: tau "
                          f"{row.tau:+.2f} vs {paired.tau_other:+.2f}, difference {paired.tau_minus_other:+.2f} "
                          f"[{ci[0]:+.2f}, {ci[1]:+.2f}]")
    ceiling = report.noise_ceiling
    if ceiling is not None and ceiling.reference is not None:
        console.print(f"noise ceiling (reference, seed vs seed, {ceiling.pairs} architectures): "
                      f"tau {ceiling.reference.tau:+.2f}")
    if ceiling is not None and ceiling.modelled is not None:
        console.print(modelled_text(ceiling.modelled))
    if ceiling is not None and ceiling.modelled_by_size is not None:
        console.print(by_size_text(ceiling.modelled_by_size))
    best = report.best
    if best:
        beside = "" if best.baseline is None else f"; {best.baseline} alone: {best.baseline_tau:+.2f}"
        console.print(f"best: {best.signal} (tau {best.tau:+.2f}{beside})")
        versus = best.versus_score
        if versus and versus.ci:
            console.print(f"best against the study's score {versus.score} (tau {versus.tau_score:+.2f}): "
                          f"difference {versus.tau_minus:+.2f} [{versus.ci[0]:+.2f}, {versus.ci[1]:+.2f}], "
                          f"above it in {versus.above_fraction:.0%} of resamples")


def print_validate(report: dict, console: Console) -> None:
    """The analysis as a table: each group's published pairs, as the proxy, FLOPs and parameters order them."""
    from nasface.ui.validity_page import GROUP_COLUMNS, group_rows, summary_line

    table = Table(*GROUP_COLUMNS, title="published pairs ordered as published (ties under 0.3 points not counted)")
    for row in group_rows(report):
        table.add_row(*row)
    (console if console.is_terminal else Console(width=max(console.width, 200))).print(table)
    console.print(summary_line(report))
