"""Latency in a search (``--latency``, ``--budget-latency``): known for every candidate, measured for the front.

Each sampled candidate's latency on the search's target is known before it is trained, one of two ways
(``--latency-by``):

- ``table`` (the default): predicted from the table of that target on this machine
  (``studies/latency-tables/``, as ``nasface latency table`` builds it), and
  raised by the table's margin (``nasface.latency.table.margin``: a 99.5 % bound on how far a new
  network reads above its prediction);
- ``measurement``: the candidate exported and measured whole here, beside the fixed companions the
  front's last group is filled with (``nasface.latency.measure``), a few seconds each, and raised by
  ``MEASUREMENT_MARGIN`` of its runtime and precision, how far a figure can read higher when measured
  again.  Exact for this machine, where the table's prediction is not (BENCHMARKS.md: 92-99 % within
  +-10 % on onnxruntime fp32, 84-92 % on int8 and OpenVINO in one sitting, 81-97 % in three).

The figure joins its costs (``latency_ms``), so a latency budget rejects it like any other budget and
tells the sampler how far over it is, and ``latency_ms`` can be an objective.  Parts the table lacks are measured when a
candidate first needs them (the default space has far too many to table beforehand), and a table
without whole networks to fit its correction on gets a few random networks of the space measured
first.  When the search ends, every member of the Pareto front is measured, in turn, and the measured
figures (stored with the study, keyed) are what the report and the exported recipe carry.
"""

from __future__ import annotations

import functools
import logging
import optuna

from nasface.latency.build import ensure_networks, ensure_parts, sample_networks
from nasface.latency.measure import measure
from nasface.latency.table import LatencyPredictor, LatencyTable, MissingParts
from nasface.latency.target import LatencyTarget, default_table, describe_key
from nasface.arch.space import SearchSpace, load_space
from nasface.arch.spec import ArchSpec, spec_from_dict

logger = logging.getLogger(__name__)

# random networks measured whole where the table has fewer, to fit the correction and the margin on (the
# margin's bound from fewer is wide: Student's t at 0.995 is 4.6 on 4 degrees of freedom, 3.2 on 9)
SEARCH_FIT_NETWORKS = 10
# How much higher a whole network read when measured again (another sitting, minutes to days later, one
# thread, on the 2-core EPYC of BENCHMARKS.md) in 99 % of repeats, per runtime and precision: a candidate
# measured within the budget by less than this may not be when the front is measured.  From
# `benchmarks/latency_repeat.py`: every ordered pair of 8-12 sittings of 50 networks, 2,800-6,600 repeats,
# each network in a group of eight or beside the fixed companions, as a search measures it.
MEASUREMENT_MARGIN = {("onnxruntime", "fp32"): 0.160, ("onnxruntime", "int8"): 0.128,
                      ("openvino", "fp32"): 0.175, ("openvino", "int8"): 0.274}
MEASURED_ATTR = "nasface_latency_measured"  # the study's user attribute: trial number -> measured figure


class SearchLatency:
    """The predictor of one search: its target's table on this machine, filled as candidates need it."""

    def __init__(self, target: LatencyTarget, table: LatencyTable, space: SearchSpace, seed: int, source: str):
        self.target, self.table, self.source = target, table, source
        if len(table.networks) < SEARCH_FIT_NETWORKS:
            ensure_networks(table, sample_networks(space, SEARCH_FIT_NETWORKS, seed), target, source=source)
        self.predictor = LatencyPredictor(table)

    def predict(self, spec: ArchSpec) -> float:
        """The predicted latency of ``spec`` (its parts timed first where the table lacks them)."""
        return self._filled(spec).predict(spec)

    def bound(self, spec: ArchSpec) -> float:
        """The latency ``spec`` is predicted not to exceed when measured (``LatencyPredictor.bound``)."""
        return self._filled(spec).bound(spec)

    def _filled(self, spec: ArchSpec) -> LatencyPredictor:
        try:
            self.predictor.summed(spec)
        except MissingParts:
            ensure_parts(self.table, [spec], self.target, source=self.source)
        return self.predictor


@functools.lru_cache(maxsize=4)
def _search_latency(latency: str, studies_dir: str, space: str | None, seed: int, source: str) -> SearchLatency:
    target = LatencyTarget.parse(latency)
    table = LatencyTable.open(default_table(target, studies_dir), target.key())
    return SearchLatency(target, table, load_space(space), seed, source)


@functools.lru_cache(maxsize=256)
def _measured_ms(spec: ArchSpec, latency: str, source: str) -> float:
    """A candidate measured whole (once per process: it is checked before training and again after)."""
    return measure([spec], LatencyTarget.parse(latency), source=source)[0].ms


def measurement_margin(latency: str) -> float:
    """The share a figure measured on ``latency`` (a target, ``onnxruntime:int8:1``) is raised by."""
    target = LatencyTarget.parse(latency)
    return MEASUREMENT_MARGIN[target.runtime, target.precision]


def latency_cost(spec: ArchSpec, config) -> dict:
    """``{"latency_ms": bound}`` for a search with a latency target (``config.latency``), else ``{}``: the
    prediction (or, ``--latency-by measurement``, the measured figure) plus its margin, so that a candidate
    within the latency budget stays within it when measured (the margin is the same for every candidate
    of the search, so it ranks them as the figure does)."""
    if config.latency is None:
        return {}
    if config.latency_by == "measurement":
        measured = _measured_ms(spec, config.latency, config.data.source)
        return {"latency_ms": measured * (1 + measurement_margin(config.latency))}
    model = _search_latency(config.latency, str(config.studies_dir), config.space, config.seed, config.data.source)
    return {"latency_ms": model.bound(spec)}


def measure_front(study: optuna.Study, config) -> dict[int, dict]:
    """Measure every member of the study's Pareto front on its latency target, in turn; store the figures
    with the study (``measured_latency`` reads them) and return them by trial number."""
    from nasface.search.results import pareto_front
    from nasface.search import record

    if config.latency is None:
        return {}
    front = [record.read(trial) for trial in pareto_front(study)]
    specs = [spec_from_dict({**facts.spec, "name": f"trial-{facts.number}"}) for facts in front]
    target = LatencyTarget.parse(config.latency)
    figures = measure(specs, target, source=config.data.source)
    measured = {facts.number: {**figure.to_dict(), "bound_ms": (facts.cost or {}).get("latency_ms")}
                for facts, figure in zip(front, figures)}
    study.set_user_attr(MEASURED_ATTR, {str(number): figure for number, figure in measured.items()})
    if measured:
        limit = config.budgets.latency_ms
        within = sum(figure["ms"] <= limit for figure in measured.values()) if limit else len(measured)
        logger.info(f"Pareto front measured on {describe_key(figures[0].key)}: "
                    + ", ".join(f"trial {number} {figure['ms']:.2f} ms" for number, figure in measured.items())
                    + (f"; {within} of {len(measured)} within the {limit:g} ms budget" if limit else ""))
    return measured


def measured_latency(study: optuna.Study) -> dict[int, dict]:
    """The measured figures of the study's final front, by trial number (empty when none were measured)."""
    return {int(number): figure for number, figure in study.user_attrs.get(MEASURED_ATTR, {}).items()}
