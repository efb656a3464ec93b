"""``nasface search``: Optuna ask/tell in the driver, candidates trained by an executor (Ray).

The driver loop, top to bottom:

1. check every input (budgets, space, data, teacher, sampler, storage) before anything is created;
2. open or create the study (SQLite ``studies/<name>/study.db`` by default, any Optuna storage URL);
3. recover trials a dead driver left RUNNING (failed with the reason, re-enqueued once) and
   enqueue the seed presets that are points of the space as baseline trials;
4. ask -> sample a spec -> count it analytically; a candidate over any budget is told to the study
   at once (its constraint values and worst-case accuracy) and never trained;
5. within budget -> the executor trains and scores it; the result (or the reason it failed) is
   told to the study, and its record (``record.TrialRecord``: kind, spec, costs, metrics, signals,
   wall time, reason) is stored with the trial.

The package, one job per file: ``config`` (the settings and their option table), ``checks``
(inputs), ``samplers``, ``job`` (what a worker runs), ``executor`` (inline / Ray), ``record`` (the
trial record), ``storage`` (the study lock), ``recovery`` (liveness, heartbeats, orphans), ``study``
(settings, baselines and promotions written to the study), ``rungs`` (successive halving's rule),
``eta`` (counts and time left), ``live`` and ``periodic`` (trials' progress files), ``latency``
(latency as a budget and objective), ``driver`` (the loop); then ``results`` (a study read back)
and ``export`` (a trial as a spec and recipe).

``--trials N`` counts the candidates whose training any driver started (``nasface.search.record``
says exactly which kinds of trial that is).  Several drivers may run one study at once: steps 2-4
and the bookkeeping of step 5 run under a lock shared by every driver of the storage
(``nasface.search.storage.StudyLock``), so no seed network is enqueued twice, no architecture is trained
twice, and N candidates are trained in all.
"""

import importlib

# Each name is imported from its module on first use: ``nasface.search.record`` and ``.config`` stay
# cheap to import (the command line's option table, the report) without Optuna's samplers, Ray or torch.
_EXPORTS = {
    "DEFAULT_SCORE": "config", "OBJECTIVES": "config", "SAMPLERS": "config", "DataSettings": "config",
    "SearchConfig": "config", "config_from_options": "config", "parse_duration": "config",
    "cheapest_spec": "checks", "check_config": "checks", "WORST_SCORE": "candidate", "objective_values": "candidate",
    "run_search": "driver", "SearchInterrupted": "driver", "load_proxy_data": "job", "run_candidate": "job", "make_sampler": "samplers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nasface.search' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nasface.search.{_EXPORTS[name]}"), name)
