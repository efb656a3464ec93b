"""``nasface fidelity``: how far the proxy's ranking of architectures can be trusted, measured.

Given proxy data, a space, budgets and a proxy (a study file's, by default the README's), it

1. draws N feasible architectures stratified over the space's FLOPs range (plus the seed presets
   that fit), in an order whose every prefix spans the range, so a study cut short is still usable;
2. trains each once to the reference budget (``factors``: by default 1/4, 1/2, 1, 2, 4 and 8 times
   the proxy's steps; the largest is the reference) and measures it at every budget on the way:
   under the proxy's warm-up-stable-decay schedule a shorter budget is a branch off the stable
   phase, equal to the run that budget would train on its own (``nasface.training.proxy.score_budgets``);
   every ranking signal of ``nasface.training.signals`` is recorded at every budget, with its CPU time, so
   the log doubles as a tabular benchmark for multi-fidelity search;
3. repeats the run with a second seed on a subset spread over the FLOPs range, which gives the
   noise ceiling: how well the reference ranks itself;
4. reports, for every signal at the proxy's budget (and accuracy at every budget): Kendall tau and
   Spearman rho against the reference with bootstrap intervals, overall and within FLOPs strata,
   the recall of the reference's top 5 in the signal's top 10, the paired difference to FLOPs
   alone, and a combination of the signals fitted with leave-one-architecture-out
   cross-validation.

A *yardstick* (``--yardstick dlib-resnet``, or any teacher) adds one signal: the student's
agreement with a second teacher it does not learn from.  It changes no training, so it is not part
of a run's key: architectures logged before it was given keep their lines, and the signal is filled
in for them by replaying each run up to the proxy's budget (an eighth of its cost by default) and
appending a *fill* line.  A replay is used only where it reproduces the logged accuracy and loss
exactly, as a CPU run does; one that does not (another machine, a GPU) is logged as differing and
its architecture keeps lacking the signal.  A signal some architectures lack is analysed on those
that have it (with their count), outside the combination.

Every trained architecture is one line of ``log.jsonl`` in the output folder, appended when it
finishes; a killed run continues where it stopped (an architecture cut off mid-run is trained
again).  ``fidelity.json`` holds the analysis (a ``FidelityReport``); ``nasface.ui.fidelity_page`` draws it as
``fidelity.html`` (offline plotly).

The package, one module per job: ``settings`` (what is measured, the log's keys), ``choice``
(which architectures, in what order), ``walltime`` (how long a run takes), ``run`` (training what
the log lacks), ``yardstick`` (replays filling a yardstick in), ``analysis`` (rank agreement, the
noise ceiling), ``verdict`` (the analysis in words) and ``matching`` (which study measured a
search's proxy).
"""

from nasface.fidelity.analysis import (CEILING_MARGIN, TRIVIAL, analyse, best_signal, budget_tradeoff,
                                       shortest_trusted_budget)
from nasface.fidelity.choice import draw_architectures, interleave, run_plan, second_seed_subset
from nasface.fidelity.matching import measured_fidelity, reports_of_study, wanted_proxy
from nasface.fidelity.run import check_log_to_analyse, forget_logged_progress, run_fidelity, teacher_digest
from nasface.fidelity.settings import (LOG, PAGE, RECIPE_FIELDS, REPORT, FidelitySettings, check_settings, describe,
                                       row_key, teacher_identity)
from nasface.fidelity.verdict import (TRADEOFF_COLUMNS, by_size_text, fidelity_sentence, modelled_text, regret_note,
                                      regret_text, shortest_trusted_text, tradeoff_cells, versus_text)
from nasface.fidelity.walltime import TIMEOUT_MARGIN, expected_run_seconds, expected_wall_seconds, theil_sen
from nasface.fidelity.yardstick import FILL, fill_key

__all__ = [
    "CEILING_MARGIN", "FILL", "LOG", "PAGE", "RECIPE_FIELDS", "REPORT", "TIMEOUT_MARGIN", "TRADEOFF_COLUMNS", "TRIVIAL",
    "FidelitySettings", "analyse", "best_signal", "budget_tradeoff", "by_size_text", "check_log_to_analyse",
    "check_settings", "describe", "draw_architectures", "expected_run_seconds", "expected_wall_seconds",
    "fidelity_sentence", "fill_key", "forget_logged_progress", "interleave", "measured_fidelity", "modelled_text",
    "regret_note", "regret_text", "reports_of_study", "row_key", "run_fidelity", "run_plan", "second_seed_subset",
    "shortest_trusted_budget", "shortest_trusted_text", "teacher_digest", "teacher_identity", "theil_sen",
    "tradeoff_cells", "versus_text", "wanted_proxy",
]
