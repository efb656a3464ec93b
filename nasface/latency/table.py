"""The per-part latency table of one target on one machine, and the predictor that sums it.

The table is an append-only log (JSON lines): a header with its key (runtime and version, precision,
threads, CPU model), then one line per measured part (``nasface.latency.parts``) and sitting, and one
per measured whole network and sitting (its parts, their sum and operators beside its measured figure).
A part or a network timed in several sittings counts at the median of its sittings' figures, and a
network's sum follows its parts' figures.  Not the least: each sitting after the first times them in
its own order (``nasface.latency.build.sitting_order``), beside other company, and what the others
timed in turn evict from the caches moves a figure both ways, so the median is its figure in typical
company, as a network meets it; the least of three such sittings read low, and on OpenVINO int8 scored
12-14 points worse than their median (``benchmarks/latency_company.py``).  Lines are
appended whole and synced, so a killed build keeps every part it finished and the same command
continues it; a torn last line is ignored.  A table is opened only for its own key: a table of another runtime, precision, thread count
or machine is refused, never reused.

A network's prediction is the sum of its parts, corrected by a fit on the whole networks the table
measured (``Correction``: a slope on the sum, a cost per operator and, on a runtime whose PReLU runs by
its input's signs, one per element a PReLU takes, as a lone part runs otherwise than inside a
network).  Predicting reads a dict, counts the PReLUs by the parts' cost rules and runs no torch.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nasface.core.atomic import write_atomic
from nasface.core.errors import NasfaceError
from nasface.latency.parts import Part, part_from_key, parts
from nasface.latency.target import describe_key, prelu_by_signs
from nasface.arch.spec import ArchSpec

# 6: parts timed on a reference network's activations at their size (``nasface.latency.measure.
# activation_maps``); 5: a part a stage repeats timed as a chain of copies (``copies``); 4: parts
# timed on maps whose signs mix as a network's activations do (3: on the faces' smoother maps,
# where PReLU ran up to 18 % faster; in context, behind a lead, less the lead, with the operators each
# runs; 2: parts alone, on face maps, by CPU time on one thread; 1: on noise, by wall time)
FORMAT = 6
MIN_FIT_NETWORKS = 2  # below this the prediction is the plain sum (no line can be fitted)
# a latency budget is checked against the prediction times (1 + a one-sided bound, at this confidence, on
# how far a new network reads above its prediction: ``margin``), so that a member of a front within it is
# within it when measured; 0.995 covered 98.2-99.9 % of held-out networks on nine tables (BENCHMARKS.md)
BOUND_CONFIDENCE = 0.995
MIN_MARGIN_ERRORS = 3  # held-out errors below which no spread can be estimated: no margin
MIN_PLANE_NETWORKS = 5  # below this the correction has no per-operator term (three terms on fewer would chase noise)
MIN_PRELU_NETWORKS = 8  # below this it has no term for the PReLUs' elements either


class MissingParts(KeyError):
    """Parts a prediction needs that the table has not measured (``parts``: them, in network order)."""

    def __init__(self, missing: list[Part]):
        super().__init__(f"{len(missing)} part(s) not in the latency table")
        self.parts = missing


@dataclass
class LatencyTable:
    path: Path
    key: dict
    entries: dict[str, float] = field(default_factory=dict)  # part key -> ms (min of its runs, median of its sittings)
    nodes: dict[str, int] = field(default_factory=dict)      # part key -> the operators it runs
    figures: dict[str, list[float]] = field(default_factory=dict)  # part key -> its figure in each sitting
    # one row per network measured whole, its ms the median of its sittings': {name, parts_ms, nodes, ms,
    # median_ms, runs, parts, prelu_elements} (median_ms: the median of the first sitting's runs;
    # prelu_elements: counted from its parts, not stored, where the runtime's PReLU runs by its input's signs)
    networks: list[dict] = field(default_factory=list)
    network_figures: dict[str, list[float]] = field(default_factory=dict)  # network name -> its figure in each sitting

    @classmethod
    def open(cls, path: str | os.PathLike, key: dict, create: bool = True) -> "LatencyTable":
        """The table at ``path`` for ``key`` (a new one when ``create`` and there is none); another key's
        table is refused in one line."""
        path = Path(path)
        if not path.is_file():
            if not create:
                raise NasfaceError(f"{path}: no such latency table; build one with nasface latency table")
            write_atomic(path, json.dumps({"kind": "header", "format": FORMAT, "key": key}) + "\n")
        table = cls(path, key)
        table._read()
        return table

    def _read(self) -> None:
        lines = self.path.read_text().splitlines()
        header = _decode(lines[0]) if lines else None
        if not header or header.get("kind") != "header":
            raise NasfaceError(f"{self.path}: not a nasface latency table")
        if header.get("format") != FORMAT:
            raise NasfaceError(f"{self.path}: a latency table of format {header.get('format')}, measured another "
                               f"way than this nasface measures (format {FORMAT}): build a new one with nasface "
                               f"latency table (or give another --table)")
        if header["key"] != self.key:
            raise NasfaceError(f"{self.path} was built for {describe_key(header['key'])}; this is "
                               f"{describe_key(self.key)}: build a table here with nasface latency table "
                               f"(or give another --table)")
        for line in lines[1:]:
            row = _decode(line)
            if row is None:
                continue  # a line torn by a kill (only the last can be)
            if row.get("kind") == "part":
                if not all(name in row for name in ("part", "ms", "nodes")):
                    raise NasfaceError(f"{self.path}: a part row without its part, ms or nodes (written by an "
                                       f"earlier nasface?): build a new table with nasface latency table")
                self._count(row["part"], row["ms"], row["nodes"])
            elif row.get("kind") == "network":
                self._count_network({k: v for k, v in row.items() if k != "kind"})
        self._resum()

    @property
    def sittings(self) -> dict[str, int]:
        """part key -> the sittings that timed it."""
        return {key: len(found) for key, found in self.figures.items()}

    @property
    def network_sittings(self) -> dict[str, int]:
        """network name -> the sittings that measured it whole."""
        return {name: len(found) for name, found in self.network_figures.items()}

    def _count(self, key: str, ms: float, nodes: int) -> bool:
        """Take one sitting's figure of a part; whether the part had a figure before (which has moved)."""
        self.figures.setdefault(key, []).append(ms)
        self.entries[key] = float(np.median(self.figures[key]))
        self.nodes.setdefault(key, nodes)
        return len(self.figures[key]) > 1

    def _count_network(self, row: dict) -> None:
        """Take one sitting's figure of a network: its row (the first sitting's) carries the median figure."""
        name = row["name"]
        self.network_figures.setdefault(name, []).append(row["ms"])
        kept = next((kept for kept in self.networks if kept["name"] == name), None)
        if kept is None:
            self.networks.append(kept := dict(row))
            if row.get("parts") and prelu_by_signs(self.key):  # counted from its parts, as the predictor counts
                kept["prelu_elements"] = sum(part_from_key(key).prelu_elements for key in row["parts"])
        kept["ms"] = float(np.median(self.network_figures[name]))

    def _resum(self) -> None:
        """Each network's sum of parts from its parts' figures now (where its row names its parts): the
        correction is fitted on the sums the predictor adds up."""
        for row in self.networks:
            keys = row.get("parts")
            if keys and all(key in self.entries for key in keys):
                row["parts_ms"] = sum(self.entries[key] for key in keys)

    def _append(self, row: dict) -> None:
        line = (json.dumps(row) + "\n").encode()
        with open(self.path, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # two builders of one table append whole lines
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def add_part(self, part: Part, ms: float, median_ms: float, runs: int, nodes: int, lead_ms: float = 0.0,
                 copies: int = 1) -> None:
        self._append({"kind": "part", "part": part.key, "ms": ms, "median_ms": median_ms, "runs": runs,
                      "nodes": nodes, "lead_ms": lead_ms, "copies": copies})
        if self._count(part.key, ms, nodes):
            self._resum()  # its figure moved: the sums of the networks it is part of follow

    def add_network(self, name: str, parts_ms: float, ms: float, median_ms: float, runs: int,
                    nodes: int, parts: list[str]) -> None:
        """A network measured whole in one sitting; ``parts``: its parts' keys, in order, so its sum follows
        their figures."""
        row = {"name": name, "parts_ms": parts_ms, "nodes": nodes, "ms": ms, "median_ms": median_ms, "runs": runs,
               "parts": parts}
        self._append({"kind": "network", **row})
        self._count_network(row)

    def missing(self, specs: list[ArchSpec], sittings: int = 1) -> list[Part]:
        """The distinct parts of ``specs`` the table has timed in fewer than ``sittings`` sittings, in the
        order they are met."""
        found: dict[str, Part] = {}
        for spec in specs:
            for part in parts(spec):
                if len(self.figures.get(part.key, ())) < sittings:
                    found.setdefault(part.key, part)
        return list(found.values())


def _decode(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


@dataclass(frozen=True)
class Correction:
    """measured ~ slope x (sum of parts) + per_node x (operators the parts run) + per_prelu_million x
    (millions of elements the PReLUs take) + intercept, fitted on ``networks`` measured networks.

    A part is timed in context (behind a lead, less the lead: ``nasface.latency.measure``), which takes
    out the call and the layout changes at its ends; but a part timed over and over keeps its weights,
    and the runtime's code for its operators, close at hand, where in a network of hundreds of
    operators each comes from further away (on onnxruntime the same kernels took about 5 microseconds
    an operator longer inside a network): the slope and the per-operator term take out what is left of
    that.  Where a PReLU's run time depends on its input's signs (onnxruntime:
    ``nasface.latency.target.PRELU_BY_SIGNS``), it costs otherwise inside a network than in its part as
    timed, whose input's signs mix otherwise (in one network the PReLUs of six FLGC blocks took 1.4-1.9x
    their parts'), and the more elements it takes the more so: the third term takes out what it can of
    that.  The table gives its rows the elements on such a runtime only; elsewhere the term scored about a
    point worse held out (BENCHMARKS.md).  The fit minimises the squared *relative* residuals, as the
    predictor is judged: networks range over tens of times in latency, and plain least squares would
    serve the slowest few.  Too few networks (or no PReLU) for the third term give the plane, too few for
    the plane a line on the sum alone, too few for a line the plain sum.
    """

    slope: float = 1.0
    intercept: float = 0.0
    networks: int = 0
    per_node: float = 0.0
    per_prelu_million: float = 0.0

    @classmethod
    def fit(cls, networks: list[dict]) -> "Correction":
        """Fitted on rows with ``parts_ms``, ``ms`` and (for the per-operator term) ``nodes``, the operators,
        and (for the PReLUs' term, with ``nodes``) ``prelu_elements``."""
        rows = [row for row in networks if row["ms"] > 0]
        measured = np.array([row["ms"] for row in rows], dtype=float)
        sums = [row["parts_ms"] for row in rows]
        forms = [([sums], MIN_FIT_NETWORKS)]
        if all("nodes" in row for row in rows):
            nodes = [row["nodes"] for row in rows]
            forms.insert(0, ([sums, nodes], MIN_PLANE_NETWORKS))
            if all("prelu_elements" in row for row in rows):
                forms.insert(0, ([sums, nodes, [row["prelu_elements"] / 1e6 for row in rows]], MIN_PRELU_NETWORKS))
        for terms, least in forms:
            design = np.array([*terms, [1.0] * len(rows)], dtype=float).T
            if len(rows) < least or np.linalg.matrix_rank(design) < design.shape[1]:
                continue
            # each row divided by its measured figure: least squares on relative residuals
            fitted = [float(weight) for weight in
                      np.linalg.lstsq(design / measured[:, None], np.ones(len(rows)), rcond=None)[0]]
            terms_fitted = fitted[1:-1] + [0.0] * (3 - len(terms))  # the per-operator and PReLU terms, 0 if unfitted
            return cls(fitted[0], fitted[-1], len(rows), *terms_fitted)
        return cls()

    def __call__(self, parts_ms: float, nodes: int = 0, prelu_elements: int = 0) -> float:
        return (self.slope * parts_ms + self.per_node * nodes + self.per_prelu_million * prelu_elements / 1e6
                + self.intercept)


def held_out_errors(networks: list[dict]) -> list[float]:
    """Each measured network's figure over its prediction by a correction fitted on the others, less one
    (> 0: the prediction read low), for rows as ``Correction.fit`` takes them."""
    rows = [row for row in networks if row["ms"] > 0]
    errors = []
    for index, row in enumerate(rows):
        correction = Correction.fit(rows[:index] + rows[index + 1:])
        predicted = correction(row["parts_ms"], row.get("nodes", 0), row.get("prelu_elements", 0))
        if predicted > 0:
            errors.append(row["ms"] / predicted - 1.0)
    return errors


def margin(networks: list[dict], confidence: float = BOUND_CONFIDENCE) -> float:
    """How far a prediction may read low: a one-sided prediction bound, at ``confidence``, on the next
    network's held-out error, from the table's measured networks' held-out errors (``held_out_errors``)
    taken as log-normal: exp(mean + t s sqrt(1 + 1/n)) - 1 over their logs, t Student's quantile on n - 1
    degrees of freedom.  None below zero; none with fewer than ``MIN_MARGIN_ERRORS`` held-out errors.

    Not a quantile of the errors themselves: of n errors the largest covers a new network only n / (n + 1)
    of the time, 95 % for a table's 20 (BENCHMARKS.md measured 94-96 %), and a 99 % quantile needs some
    hundred networks measured whole.  The bound widens with few networks, as it should."""
    from scipy.stats import t as student

    errors = held_out_errors(networks)  # two networks or fewer give two errors or fewer: no margin
    if len(errors) < MIN_MARGIN_ERRORS:
        return 0.0
    logs = np.log1p(np.asarray(errors))
    spread = float(logs.std(ddof=1)) * np.sqrt(1.0 + 1.0 / len(logs))
    return max(0.0, float(np.expm1(logs.mean() + student.ppf(confidence, len(logs) - 1) * spread)))


class LatencyPredictor:
    """Predicts a network's latency on the table's target from the table's parts."""

    def __init__(self, table: LatencyTable):
        self.key = table.key
        self.entries, self.nodes = table.entries, table.nodes  # shared: parts measured later are seen at once
        self.correction = Correction.fit(table.networks)
        self.margin = margin(table.networks)

    def parts_ms(self, spec: ArchSpec) -> float:
        """The plain sum of the parts of ``spec``; ``MissingParts`` when the table lacks some."""
        return self.summed(spec)[0]

    def summed(self, spec: ArchSpec) -> tuple[float, int, int]:
        """The sum of the parts of ``spec``, the operators they run and the elements their PReLUs take
        (what the correction takes); ``MissingParts`` when the table lacks some."""
        total, nodes, prelus = 0.0, 0, 0
        missing = []
        for part in parts(spec):
            ms = self.entries.get(part.key)
            if ms is None:
                missing.append(part)
            else:
                total += ms
                nodes += self.nodes[part.key]
                prelus += part.prelu_elements
        if missing:
            raise MissingParts(missing)
        return total, nodes, prelus

    def predict(self, spec: ArchSpec) -> float:
        """The predicted latency of ``spec`` in milliseconds."""
        return self.correction(*self.summed(spec))

    def bound(self, spec: ArchSpec) -> float:
        """The latency ``spec`` is predicted not to exceed when measured: the prediction plus the margin
        by which a new network may read above it (``margin``, at ``BOUND_CONFIDENCE``)."""
        return self.predict(spec) * (1.0 + self.margin)
