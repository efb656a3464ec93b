"""Published full-training results as typed data (``resources/published/full_training.yaml``).

A *group* is one paper's networks trained with the same data, loss and schedule: rows are compared
only within a group.  Its published score is the mean of its hard benchmarks: the metrics every
network of the group reports, LFW left out where any other is shared (LFW is saturated: 99.5-99.8
for every lightweight network).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from nasface.arch.budget import parse_quantity
from nasface.core.errors import NasfaceError
from nasface.core.plaindata import read_yaml

# Every benchmark a table may report (percent): verification accuracy, TAR at a FAR, or rank-1
# identification, as the group's notes say.
METRICS = {
    "lfw": "LFW", "cfp_fp": "CFP-FP", "agedb_30": "AgeDB-30", "cplfw": "CPLFW", "calfw": "CALFW",
    "ijb_b": "IJB-B", "ijb_c": "IJB-C", "megaface": "MegaFace", "deepglint_light": "deepglint-light",
}
SATURATED = "lfw"
TIE_POINTS = 0.3  # published scores closer than this are a tie: within the noise of one training run
DEFAULT_TABLE = "full_training.yaml"
_GROUP_FIELDS = {"id", "paper", "table", "training_set", "recipe", "flops_unit", "verified", "notes", "networks"}
_NETWORK_FIELDS = {"name", "preset", "planned_preset", "flops", "params", "table", "metrics", "notes"}


@dataclass(frozen=True)
class Metric:
    """One published figure, with where it is printed."""

    name: str
    value: float
    paper: str
    table: str


@dataclass(frozen=True)
class PublishedNetwork:
    name: str
    preset: str | None            # the nasface preset that builds it; None where nasface cannot
    planned_preset: str | None    # the preset a block family in progress will add
    flops: int | None             # as printed, in the group's flops_unit
    params: int | None
    metrics: tuple[Metric, ...]

    def metric(self, name: str) -> float | None:
        return next((m.value for m in self.metrics if m.name == name), None)


@dataclass(frozen=True)
class PublishedGroup:
    id: str
    paper: str
    table: str
    training_set: str
    recipe: str
    flops_unit: str
    verified: bool
    notes: str
    networks: tuple[PublishedNetwork, ...]

    @property
    def score_metrics(self) -> tuple[str, ...]:
        """The metrics the group's score averages: those every network reports, LFW only if alone."""
        shared = [name for name in METRICS if all(n.metric(name) is not None for n in self.networks)]
        hard = [name for name in shared if name != SATURATED]
        return tuple(hard or shared)

    def score(self, network: PublishedNetwork) -> float:
        """The network's published score: the mean of the group's score metrics."""
        metrics = self.score_metrics
        return sum(network.metric(name) for name in metrics) / len(metrics)


@dataclass(frozen=True)
class PublishedTable:
    source: str
    groups: tuple[PublishedGroup, ...]

    def group(self, group_id: str) -> PublishedGroup:
        return next(g for g in self.groups if g.id == group_id)


def default_table_path():
    return resources.files("nasface") / "resources" / "published" / DEFAULT_TABLE


def load_published(path: str | os.PathLike | None = None) -> PublishedTable:
    """The published table (nasface's own by default), checked: one line naming the field for a flaw."""
    source = default_table_path() if path is None else Path(path)
    data = read_yaml(source, "published results")
    where = str(path) if path is not None else f"nasface/resources/published/{DEFAULT_TABLE}"
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list) or not data["groups"]:
        raise NasfaceError(f"{where}: groups: a non-empty list of groups is required")
    groups = tuple(_group(entry, f"{where}: groups[{index}]") for index, entry in enumerate(data["groups"]))
    seen: set[str] = set()
    for index, group in enumerate(groups):
        if group.id in seen:
            raise NasfaceError(f"{where}: groups[{index}].id: {group.id!r} is used twice")
        seen.add(group.id)
    return PublishedTable(source=where, groups=groups)


def _group(entry, where: str) -> PublishedGroup:
    if not isinstance(entry, dict):
        raise NasfaceError(f"{where}: a mapping with {', '.join(sorted(_GROUP_FIELDS))} is required")
    unknown = set(entry) - _GROUP_FIELDS
    if unknown:
        raise NasfaceError(f"{where}.{sorted(unknown)[0]}: unknown field (fields: {', '.join(sorted(_GROUP_FIELDS))})")
    for field in ("id", "paper", "table", "training_set", "recipe", "flops_unit"):
        _text(entry.get(field), f"{where}.{field}")
    if not isinstance(entry.get("verified"), bool):
        raise NasfaceError(f"{where}.verified: true or false is required (were the figures read from the source?)")
    networks = entry.get("networks")
    if not isinstance(networks, list) or not networks:
        raise NasfaceError(f"{where}.networks: a non-empty list of networks is required")
    parsed = tuple(_network(n, f"{where}.networks[{i}]", entry["paper"], entry["table"]) for i, n in enumerate(networks))
    names = [n.name for n in parsed]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise NasfaceError(f"{where}.networks[{index}].name: {name!r} appears twice in the group")
    group = PublishedGroup(id=entry["id"], paper=entry["paper"], table=entry["table"],
                           training_set=entry["training_set"], recipe=entry["recipe"],
                           flops_unit=entry["flops_unit"], verified=entry["verified"],
                           notes=str(entry.get("notes") or ""), networks=parsed)
    if not group.score_metrics:
        raise NasfaceError(f"{where}.networks: no metric is reported by every network, so the group has no score; "
                           f"split it or add the missing figures")
    return group


def _network(entry, where: str, paper: str, group_table: str) -> PublishedNetwork:
    if not isinstance(entry, dict):
        raise NasfaceError(f"{where}: a mapping with name, preset and metrics is required")
    unknown = set(entry) - _NETWORK_FIELDS
    if unknown:
        raise NasfaceError(f"{where}.{sorted(unknown)[0]}: unknown field (fields: {', '.join(sorted(_NETWORK_FIELDS))})")
    name = _text(entry.get("name"), f"{where}.name")
    for field in ("preset", "planned_preset"):
        if entry.get(field) is not None:
            _text(entry[field], f"{where}.{field}")
    if "preset" not in entry:
        raise NasfaceError(f"{where}.preset: required (a nasface preset name, or null where nasface cannot build it)")
    table = _text(entry.get("table", group_table), f"{where}.table")
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise NasfaceError(f"{where}.metrics: a mapping of benchmark to published percent is required")
    parsed = []
    for metric, value in metrics.items():
        if metric not in METRICS:
            raise NasfaceError(f"{where}.metrics.{metric}: unknown benchmark (known: {', '.join(METRICS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
            raise NasfaceError(f"{where}.metrics.{metric}: a percentage in (0, 100] is required, got {value!r}")
        parsed.append(Metric(metric, float(value), paper, table))
    return PublishedNetwork(name=name, preset=entry["preset"], planned_preset=entry.get("planned_preset"),
                            flops=_count(entry.get("flops"), f"{where}.flops"),
                            params=_count(entry.get("params"), f"{where}.params"), metrics=tuple(parsed))


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise NasfaceError(f"{where}: a non-empty text is required")
    return value


def _count(value, where: str) -> int | None:
    """A count as printed (``221M``, ``1.55G``), or None where the source prints none."""
    return None if value is None else parse_quantity(str(value), where)
