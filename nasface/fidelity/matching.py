"""Which fidelity study, among those written in some folders, measured a search study's proxy."""

from __future__ import annotations

import json
from pathlib import Path

from nasface.fidelity.report import FidelityReport, MeasuredFidelity
from nasface.fidelity.settings import RECIPE_FIELDS, REPORT
from nasface.training.settings import default_warmup

def measured_fidelity(study_settings: dict, folders) -> MeasuredFidelity | None:
    """The fidelity analysis (``fidelity.json``) whose proxy is the study's, from ``folders``.

    Matched on what decides a score: the data settings, the proxy's recipe (``RECIPE_FIELDS``; the
    warm-up as the schedule takes it, a tenth of the steps when the study leaves it unset, which
    is what a fidelity study pins) and the teacher.  A study whose recipe differs only in its steps,
    which are one of the budgets a fidelity study measured on the way (successive halving's top
    rung with ``--proxy-warmup`` set to that study's), matches too: bit for bit it trains that
    budget's branch, and ``budget_steps`` says which.  None when no such study has been run there.
    Of several that match (the same study on a CPU and on a GPU, say), an exact match before a
    budget's, then the one that has measured the most architectures.  A file that is not a whole
    analysis is passed over.
    """
    wanted = wanted_proxy(study_settings)
    steps = wanted.get("steps")
    found = []
    for path, plain, proxy in reports_of_study(study_settings, folders, REPORT):
        try:
            report = FidelityReport.from_json(plain)
        except (KeyError, TypeError, AttributeError):
            continue
        if proxy == wanted:
            found.append(MeasuredFidelity(report=report, path=str(path)))
        elif {**proxy, "steps": steps} == wanted and str(steps) in report.budgets and steps < report.reference_steps:
            found.append(MeasuredFidelity(report=report, path=str(path), budget_steps=steps))
    return max(found, key=lambda measured: (measured.budget_steps is None, measured.report.measured), default=None)


def reports_of_study(study_settings: dict, folders, name: str):
    """(path, report, its proxy's recipe fields) of each ``*/name`` in ``folders`` measured on the
    study's data with its teacher (a measurement's ``command_settings``); unreadable ones skipped."""
    wanted = wanted_proxy(study_settings)
    for folder in folders:
        for path in sorted(Path(folder).glob(f"*/{name}")):
            try:
                report = json.loads(path.read_text())
                settings = report["command_settings"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (settings.get("data") == study_settings.get("data")
                    and settings.get("teacher") == study_settings.get("teacher")):
                yield path, report, {k: v for k, v in settings.get("proxy", {}).items() if k in wanted}


def wanted_proxy(study_settings: dict) -> dict:
    """The study's proxy recipe (``RECIPE_FIELDS``) as a measurement of it records it: the warm-up
    as the schedule takes it, a tenth of the steps when the study leaves it unset."""
    wanted = {k: v for k, v in (study_settings.get("proxy") or {}).items() if k in RECIPE_FIELDS}
    if wanted.get("warmup_steps") is None and "steps" in wanted:  # the default: a tenth of the steps
        wanted["warmup_steps"] = default_warmup(wanted["steps"])
    return wanted
