"""A fidelity analysis in words: the lines and table cells the console, the pages and a study's
report show (they compute nothing of their own)."""

from __future__ import annotations

from nasface.fidelity.analysis import budget_tradeoff, shortest_trusted_budget
from nasface.fidelity.report import (Agreement, FidelityReport, MeasuredFidelity, ModelledBySize, ModelledCeiling,
                                     SignalAgreement)

TRADEOFF_COLUMNS = ("budget", "steps", "CPU s per architecture (train + verify)", "Kendall tau [95 % CI]",
                    "regret (points)")
NO_INTERVAL = [float("nan")] * 2


def by_size_text(by_size: ModelledBySize) -> str:
    """The ceiling modelled with a seed noise for the smaller and one for the larger networks."""
    low, high = by_size.ci or NO_INTERVAL
    small, large = (100 * sigma for sigma in by_size.sigmas)
    return (f"modelled with each FLOPs half's own seed noise (up to {by_size.split_flops / 1e6:.0f}M FLOPs sigma "
            f"{small:.2f} points from {by_size.group_pairs[0]} pairs, above {large:.2f} from "
            f"{by_size.group_pairs[1]}): tau {by_size.tau:+.2f} [{low:+.2f}, {high:+.2f}]")


def modelled_text(modelled: ModelledCeiling) -> str:
    """The ceiling modelled over every architecture, from the seed pairs' differences."""
    low, high = modelled.ci or NO_INTERVAL
    text = (f"noise ceiling modelled over all {modelled.architectures} architectures (each a seed-to-seed "
            f"difference drawn from the {modelled.pairs} pairs): tau {modelled.tau:+.2f} [{low:+.2f}, {high:+.2f}]")
    gaussian = modelled.gaussian
    if gaussian:
        low, high = gaussian.ci or NO_INTERVAL
        text += (f"; as Gaussian noise of the same spread (sigma {100 * modelled.sigma:.2f} points): "
                 f"{gaussian.tau:+.2f} [{low:+.2f}, {high:+.2f}]")
    return text


def regret_note(report: FidelityReport) -> str:
    """What the regret columns mean, with a random pick's regret ('' before any is measured)."""
    accuracy = report.available().get("accuracy")
    if accuracy is None:
        return ""
    return (f"regret: the points of {report.reference_steps}-step accuracy lost by taking the signal's best "
            f"architecture under a FLOPs budget (each architecture's FLOPs in turn), mean over the budgets; a random "
            f"pick loses {100 * accuracy.regret.random:.1f}. The top pick's: under a budget that every architecture "
            f"fits")


def versus_text(row: Agreement, baseline: str) -> str:
    """A signal's paired tau difference to a trivial baseline, with its interval ('' for the baseline itself)."""
    versus = row.versus.get(baseline)
    if versus is None:
        return ""
    low, high = versus.ci or NO_INTERVAL
    return f"{versus.tau_minus:+.2f} [{low:+.2f}, {high:+.2f}]"


def regret_text(row: Agreement) -> tuple[str, str]:
    """A signal's mean regret under FLOPs budgets, and its top pick's, in accuracy points."""
    return f"{100 * row.regret.mean:.1f}", f"{100 * row.regret.top:.1f}"


def interval_text(row: Agreement) -> str:
    """Kendall tau with its 95 % interval."""
    low, high = row.tau_ci or NO_INTERVAL
    return f"{row.tau:+.2f} [{low:+.2f}, {high:+.2f}]"


def strata_text(row: Agreement) -> str:
    """The mean tau within FLOPs strata."""
    return signed(row.strata.mean_tau)


def signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def signal_label(name: str, row: SignalAgreement) -> str:
    """A signal's name, with its count of architectures where it was measured on only some."""
    return f"{name} ({row.measured} architectures)" if row.partial else name


def tradeoff_cells(report: FidelityReport) -> list[tuple[str, ...]]:
    """``budget_tradeoff`` as text, one tuple per budget in the order of ``TRADEOFF_COLUMNS``."""
    cells = []
    for row in budget_tradeoff(report):
        low, high = row.tau_ci or NO_INTERVAL
        cells.append((f"{row.factor:g}x", str(row.steps),
                      "n/a" if row.train is None else f"{row.train:.0f} + {row.evaluate:.0f}",
                      f"{row.tau:+.2f} [{low:+.2f}, {high:+.2f}]", f"{100 * row.regret:.1f}"))
    return cells


def shortest_trusted_text(report: FidelityReport) -> str | None:
    """``shortest_trusted_budget`` of the report as a line (None without a modelled ceiling)."""
    found = shortest_trusted_budget(report)
    if found is None:
        return None
    if found.steps is None:
        return (f"no budget below the reference ranks within {found.margin:.1f} of the noise ceiling "
                f"({found.ceiling:+.2f}, modelled): a proxy longer than any measured is needed to rank that well")
    return (f"shortest budget within {found.margin:.1f} of the noise ceiling ({found.ceiling:+.2f}, modelled): "
            f"{found.steps} steps ({found.factor:g}x the proxy), tau {found.tau:+.2f}")


def fidelity_sentence(measured: MeasuredFidelity | None, score: str = "accuracy") -> str:
    """One honest line for a study's report: how well its proxy's score ranked as longer training did."""
    if measured is None:
        return ("The proxy's fidelity is <b>not measured</b> for these settings: run <code>nasface fidelity</code> "
                "with this study's settings (the same <code>--config</code> file, or the same flags as its "
                "<code>nasface search</code>) to learn how far to trust this front.")
    report, budget, path = measured.report, measured.budget_steps, measured.path
    if budget is None:
        row, measured_as = report.signals.get(score), score
    else:  # a fidelity study measures only the accuracy at its budgets other than the proxy's
        if score != "accuracy":
            return (f"The proxy's fidelity is <b>not measured</b> for the score {score}: the fidelity study that "
                    f"trained these {budget} steps ({path}) ranks only the accuracy there.")
        row = report.budgets[str(budget)]
        measured_as = f"{score} at {budget} steps, a branch of the {report.proxy_steps}-step proxy's runs"
    if row is None or not row.available:
        return (f"The proxy's fidelity study ({report.measured} of {report.architectures} architectures so "
                f"far, {path}) cannot rank the score {measured_as} yet.")
    low, high = row.tau_ci or NO_INTERVAL
    ceiling = report.noise_ceiling
    if ceiling is not None and ceiling.modelled is not None:  # over the same architectures as the score's tau
        ceiling_text = (f"; seed noise alone would hold a perfect proxy to about tau {ceiling.modelled.tau:.2f} "
                        f"over them (modelled from {ceiling.modelled.pairs} architectures trained twice)")
    elif ceiling is not None and ceiling.reference is not None:
        ceiling_text = f"; two seeds of the reference agree at tau {ceiling.reference.tau:.2f}"
    else:
        ceiling_text = ""
    picking = (f" Picking its best under a FLOPs budget loses {100 * row.regret.mean:.1f} points of "
               f"{report.reference_steps}-step accuracy on average over budgets (a random pick: "
               f"{100 * row.regret.random:.1f}).")
    return (f"Measured fidelity of this proxy's score ({measured_as}): Kendall tau {row.tau:.2f} [95 % CI {low:.2f}, "
            f"{high:.2f}] against {report.reference_steps}-step training over {report.measured} architectures"
            + (f" (a study in progress: {report.measured} of the {report.architectures} planned)"
               if report.measured < report.architectures else "")
            + f"{ceiling_text} ({path}).{picking}{_length_advice(report, budget or report.proxy_steps)}")


def _length_advice(report: FidelityReport, own_steps: int) -> str:
    """Which proxy length the fidelity study found to rank about as well as seed noise allows, when
    it is not the study's own."""
    shortest = shortest_trusted_budget(report)
    if shortest is None or shortest.steps == own_steps:
        return ""
    if shortest.steps is None:
        return (f" None of the budgets it measured below {report.reference_steps} steps ranks within "
                f"{shortest.margin:.1f} of that ceiling.")
    return (f" The shortest budget it measured that ranks within {shortest.margin:.1f} of that ceiling: "
            f"{shortest.steps} steps (tau {shortest.tau:.2f}).")
