"""The result of a fidelity analysis as typed data (``FidelityReport``), and its JSON form (``fidelity.json``).

The JSON is what the analysis has always written, key for key and in the same order (committed
studies and the reports that quote them read it): each class lists its fields in the file's order,
``to_json`` leaves out an ``OPTIONAL`` field that is None, and ``from_json`` reads a file back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

OPTIONAL = {"optional": True}  # a field left out of the JSON when it is None


def optional():
    return field(default=None, metadata=OPTIONAL)


class _Json:
    def to_json(self) -> dict:
        found = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None and item.metadata.get("optional"):
                continue
            found[item.metadata.get("key", item.name)] = _plain(value)
        return found

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data)


def _plain(value):
    if isinstance(value, _Json):
        return value.to_json()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _read(cls, data: dict, **convert: Callable):
    """``cls`` from its JSON form: each field from its key (absent: the field's default), through
    ``convert[field]`` where given and the value is not None."""
    values = {}
    for item in dataclasses.fields(cls):
        key = item.metadata.get("key", item.name)
        if key in data:
            value = data[key]
            values[item.name] = convert[item.name](value) if item.name in convert and value is not None else value
    return cls(**values)


def _each(read: Callable) -> Callable:
    return lambda found: {name: read(value) for name, value in found.items()}


@dataclass(frozen=True, kw_only=True)
class Paired(_Json):
    """A score's tau minus a baseline's, over the same bootstrap resamples."""

    tau_minus: float
    ci: list[float] | None
    above_fraction: float | None


@dataclass(frozen=True, kw_only=True)
class Strata(_Json):
    """Kendall tau within each FLOPs stratum, and their mean."""

    per_stratum: list[float | None]
    sizes: list[int]
    mean_tau: float | None
    mean_tau_ci: list[float] | None


@dataclass(frozen=True, kw_only=True)
class Regret(_Json):
    """Reference accuracy lost by picking with a score under FLOPs budgets (``ranking.budget_regret``)."""

    mean: float
    top: float
    random: float


@dataclass(frozen=True, kw_only=True)
class RankAgreement(_Json):
    """Kendall tau and Spearman rho against the reference, with bootstrap intervals (``ranking.rank_agreement``)."""

    n: int
    tau: float
    tau_ci: list[float] | None
    rho: float
    rho_ci: list[float] | None
    resamples: int


@dataclass(frozen=True, kw_only=True)
class Agreement(RankAgreement):
    """How a score ranks as the reference does, and what it gains over the trivial baselines."""

    versus: dict[str, Paired]
    strata: Strata
    top5_in_top10: float
    regret: Regret
    available: bool = True

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data, versus=_each(Paired.from_json), strata=Strata.from_json, regret=Regret.from_json)


@dataclass(frozen=True, kw_only=True)
class Counterpart(_Json):
    """A measure-only or partial signal against its counterpart on its own architectures."""

    rival: str = field(metadata={"key": "with"})
    tau_other: float
    tau_minus_other: float
    tau_minus_other_ci: list[float] | None
    tau_above_other_fraction: float | None


@dataclass(frozen=True, kw_only=True)
class SignalAgreement(Agreement):
    """A signal at the proxy's budget: its agreement, over ``measured`` architectures."""

    measured: int
    partial: bool
    measure_only: bool
    same_architectures: dict[str, float] | None = optional()  # each complete signal's tau on the same ones
    paired: Counterpart | None = optional()

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data, versus=_each(Paired.from_json), strata=Strata.from_json, regret=Regret.from_json,
                     paired=Counterpart.from_json)


@dataclass(frozen=True, kw_only=True)
class UnmeasuredSignal(_Json):
    """A signal too few architectures have (fewer than four)."""

    available: bool = False
    measured: int


def read_signal(data: dict) -> SignalAgreement | UnmeasuredSignal:
    return SignalAgreement.from_json(data) if data.get("available") else UnmeasuredSignal.from_json(data)


@dataclass(frozen=True, kw_only=True)
class Combined(Agreement):
    """The signals combined, fitted with leave-one-architecture-out cross-validation."""

    weights: dict[str, float]

    def to_json(self) -> dict:
        found = super().to_json()
        return {"weights": found.pop("weights"), **found}


@dataclass(frozen=True, kw_only=True)
class Estimate(_Json):
    """A Kendall tau with its 95 % interval."""

    tau: float
    ci: list[float] | None


@dataclass(frozen=True, kw_only=True)
class Modelled(Estimate):
    """Seed-to-seed tau over ``architectures``, modelled from ``pairs`` (``ranking.modelled_ceiling``)."""

    noise: str
    pairs: int
    architectures: int


@dataclass(frozen=True, kw_only=True)
class ModelledCeiling(Modelled):
    """The ceiling modelled with one seed noise for every architecture."""

    sigma: float | None = optional()
    gaussian: Estimate | None = optional()  # the same with Gaussian noise, for comparison

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data, gaussian=Estimate.from_json)


@dataclass(frozen=True, kw_only=True)
class ModelledBySize(Modelled):
    """The ceiling modelled with the smaller and the larger half's own seed noise (split at ``split_flops``)."""

    sigmas: list[float]
    group_pairs: list[int]
    split_flops: float
    group_architectures: list[int]


@dataclass(frozen=True, kw_only=True)
class SeedDifference(_Json):
    arch: str
    flops: int
    reference: float  # first seed's reference accuracy minus the second's


@dataclass(frozen=True, kw_only=True)
class NoiseCeiling(_Json):
    """How well the reference ranks itself: seed against seed, measured and modelled."""

    pairs: int
    note: str | None = optional()  # why there is no more (too few pairs)
    reference: RankAgreement | None = optional()
    proxy: RankAgreement | None = optional()
    modelled: ModelledCeiling | None = optional()
    differences: list[SeedDifference] | None = optional()
    modelled_by_size: ModelledBySize | None = optional()

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data, reference=RankAgreement.from_json, proxy=RankAgreement.from_json,
                     modelled=ModelledCeiling.from_json,
                     differences=lambda pairs: [SeedDifference.from_json(pair) for pair in pairs],
                     modelled_by_size=ModelledBySize.from_json)


@dataclass(frozen=True, kw_only=True)
class ShortestTrusted(_Json):
    """The cheapest budget whose accuracy ranks within ``margin`` of the modelled ceiling (``steps`` None: none)."""

    ceiling: float
    margin: float
    steps: int | None
    factor: float | None = optional()
    tau: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class VersusScore(Paired):
    """The best signal against the score the study's search maximises (``score``, at ``tau_score``), paired."""

    score: str
    tau_score: float

    def to_json(self) -> dict:
        found = super().to_json()
        return {"score": found.pop("score"), "tau_score": found.pop("tau_score"), **found}


@dataclass(frozen=True, kw_only=True)
class Best(_Json):
    """The best signal (or the combination), and beside it the better trivial baseline."""

    signal: str
    tau: float
    baseline: str | None
    baseline_tau: float | None
    versus_score: VersusScore | None = None

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data, versus_score=VersusScore.from_json)


@dataclass(frozen=True, kw_only=True)
class FlopsStrata(_Json):
    bounds_log10_flops: list[list[float]]


@dataclass(frozen=True, kw_only=True)
class TableRow(_Json):
    """One architecture and seed: its costs, and accuracy and CPU seconds at every budget (keyed by steps)."""

    arch: str
    seed: int
    flops: int
    params: int
    accuracy: dict[str, float | None]
    cpu_seconds: dict[str, float | None]


@dataclass(frozen=True, kw_only=True)
class FidelityReport(_Json):
    """A fidelity study's analysis: every signal's agreement with the reference (``signals``, at the
    proxy's budget), accuracy's at every other budget (``budgets``, keyed by steps), the noise
    ceiling, the combination and the best.  Until four architectures are measured, only ``note``
    says so (and ``points``, ``shortest_trusted`` and ``best`` are not written)."""

    architectures: int
    measured: int
    failed: dict[str, list[str]]
    proxy_steps: int
    reference_steps: int
    signals: dict[str, SignalAgreement | UnmeasuredSignal]
    budgets: dict[str, Agreement]
    strata: FlopsStrata | None
    noise_ceiling: NoiseCeiling | None
    combined: Combined | None
    cpu_seconds: dict[str, dict[str, float] | float]  # per budget (train, evaluate), and zero_cost
    table: list[TableRow]
    note: str | None = optional()
    points: dict[str, list[list]] | None = None  # per signal: its values, the reference's, the architectures
    shortest_trusted: ShortestTrusted | None = None
    best: Best | None = None
    command_settings: dict | None = None  # what the command was given (``settings.describe``)
    teacher: dict | None = None  # what the teacher is (``settings.teacher_identity``)

    def available(self) -> dict[str, SignalAgreement]:
        """The signals measured on enough architectures to rank, by name."""
        return {name: row for name, row in self.signals.items() if row.available}

    def to_json(self) -> dict:
        found = super().to_json()
        if self.note is not None:  # nothing was analysed
            for name in ("points", "shortest_trusted", "best"):
                del found[name]
        return found

    @classmethod
    def from_json(cls, data: dict):
        return _read(cls, data, signals=_each(read_signal), budgets=_each(Agreement.from_json),
                     strata=FlopsStrata.from_json, noise_ceiling=NoiseCeiling.from_json, combined=Combined.from_json,
                     table=lambda rows: [TableRow.from_json(row) for row in rows],
                     shortest_trusted=ShortestTrusted.from_json, best=Best.from_json)


@dataclass(frozen=True, kw_only=True)
class BudgetCost:
    """A budget's mean CPU seconds per architecture (training it alone, verifying it; None where not
    logged) beside how its accuracy ranks (``analysis.budget_tradeoff``)."""

    steps: int
    factor: float  # of the proxy's steps
    train: float | None
    evaluate: float | None
    tau: float
    tau_ci: list[float] | None
    regret: float  # mean, in accuracy


@dataclass(frozen=True, kw_only=True)
class MeasuredFidelity:
    """A fidelity study found to have measured a search study's proxy (``matching.measured_fidelity``):
    where, and at which of its budgets when it is not its proxy's own (``budget_steps``)."""

    report: FidelityReport
    path: str
    budget_steps: int | None = None
