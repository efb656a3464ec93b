"""Hard budgets: parsing "1G" / "20MB" exactly, and checking a candidate's cost against them.

A number may be written in scientific notation (``1e9``, ``1.5E9``), read exactly (no float rounding).
Units (case-insensitive): K, M, G, T are 10^3, 10^6, 10^9, 10^12; KB, MB, GB, TB are the same
powers of ten in bytes; KiB, MiB, GiB, TiB are powers of 1024.  A budget must be a positive
whole number once its unit is applied.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from nasface.arch.cost import CONVENTIONS
from nasface.core.errors import NasfaceError

DECIMAL_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
BYTE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MAX_DIGITS = 30  # 1e30: far beyond any network; a larger exponent is a typo
# a decimal number, optionally in scientific notation (1e9, 1.5E9), then an optional unit
_QUANTITY = re.compile(r"^\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_quantity(text: str, option: str, in_bytes: bool = False) -> int:
    """``"1G"`` -> 1_000_000_000; ``"20MB"`` -> 20_000_000 (``in_bytes`` also accepts byte units)."""
    units = {**DECIMAL_UNITS, **BYTE_UNITS} if in_bytes else DECIMAL_UNITS
    examples = "20MB, 19.5MiB or 20000000" if in_bytes else "1G, 500M, 1e9 or 1000000000"
    match = _QUANTITY.match(str(text))
    if not match or match.group(2).lower() not in units:
        valid = ", ".join(k for k in ("K", "M", "G", "T", "KB", "MB", "GB", "KiB", "MiB", "GiB")
                          if in_bytes or len(k) == 1)
        raise NasfaceError(f"{option} {text!r}: not a quantity; write a positive number with an optional "
                           f"unit ({valid}), e.g. {examples}")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid decimals
        raise NasfaceError(f"{option} {text!r}: not a number") from None
    if number.adjusted() > MAX_DIGITS:  # 1e999999999 would overflow, or take minutes to become an int
        raise NasfaceError(f"{option} {text!r}: too large to be a budget (at most 1e{MAX_DIGITS})")
    value = number * units[match.group(2).lower()]
    if value <= 0:
        raise NasfaceError(f"{option} {text!r}: a budget must be positive")
    if value != value.to_integral_value():
        raise NasfaceError(f"{option} {text!r}: {value} is not a whole number")
    return int(value)


@dataclass(frozen=True)
class Budgets:
    """The hard limits a candidate must meet to be trained (None = no limit)."""

    flops: int | None = None
    convention: str = "lfr"
    weight_bytes: int | None = None
    params: int | None = None
    activation_bytes: int | None = None
    latency_ms: float | None = None  # on the search's --latency target, predicted or measured (nasface.latency)

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise NasfaceError(f"--flops-convention {self.convention!r}: choose from {', '.join(CONVENTIONS)}")

    @classmethod
    def parse(cls, flops: str | None = None, mem: str | None = None, params: str | None = None,
              act_mem: str | None = None, convention: str = "lfr", latency: str | None = None) -> "Budgets":

        return cls(
            flops=None if flops is None else parse_quantity(flops, "--budget-flops"),
            convention=convention,
            weight_bytes=None if mem is None else parse_quantity(mem, "--budget-mem", in_bytes=True),
            params=None if params is None else parse_quantity(params, "--budget-params"),
            activation_bytes=None if act_mem is None else parse_quantity(act_mem, "--budget-act-mem", in_bytes=True),
            latency_ms=None if latency is None else parse_latency(latency, "--budget-latency"),
        )

    def stored(self) -> dict:
        """The budgets as a study's fingerprint and a measurement's settings store them.  An unset
        latency budget leaves no key, so what was stored before latency budgets existed still matches."""
        stored = dataclasses.asdict(self)
        if stored["latency_ms"] is None:
            del stored["latency_ms"]
        return stored

    def limits(self) -> dict[str, float]:
        """Cost key -> limit, for the budgets that are set (keys of ``nasface.count``, and ``latency_ms``)."""
        pairs = {"flops": self.flops, "weight_bytes": self.weight_bytes, "params": self.params,
                 "activation_bytes": self.activation_bytes, "latency_ms": self.latency_ms}
        return {key: limit for key, limit in pairs.items() if limit is not None}

    def _checked(self, cost: dict) -> dict[str, float]:
        """The limits ``cost`` holds a figure for: a count alone (no latency figure, as when the
        cheapest architecture is sought or widths are scaled) is checked against the counted budgets."""
        return {key: limit for key, limit in self.limits().items() if key in cost}

    def constraints(self, cost: dict) -> dict[str, float]:
        """Optuna-style constraint values: cost / limit - 1, feasible when every value <= 0."""
        return {key: cost[key] / limit - 1.0 for key, limit in self._checked(cost).items()}

    def violations(self, cost: dict) -> list[str]:
        """One phrase per budget ``cost`` exceeds, e.g. 'FLOPs 1,022,864,152 > 1,000,000,000'."""
        return [f"{LABELS[key]} {_figure(cost[key])} > {_figure(limit)}" for key, limit in self._checked(cost).items()
                if cost[key] > limit]

    def fits(self, cost: dict) -> bool:
        return all(cost[key] <= limit for key, limit in self._checked(cost).items())

    def describe(self) -> list[str]:
        lines = []
        for key, limit in self.limits().items():
            suffix = f" ({self.convention})" if key == "flops" else ""
            extra = f" = {limit / 2**20:.2f} MiB" if key.endswith("bytes") else ""
            lines.append(f"{LABELS[key]} <= {_figure(limit)}{suffix}{extra}")
        return lines or ["no budget (every candidate is trained)"]


# the LFR2019 light track's limits: 1G FLOPs (lfr convention) and 20 MB of fp32 weights
LIGHT_TRACK = Budgets(flops=10**9, weight_bytes=20 * 10**6)

LABELS = {"flops": "FLOPs", "weight_bytes": "weight bytes (fp32)", "params": "parameters",
          "activation_bytes": "peak activation bytes", "latency_ms": "latency with its margin (ms)"}


def _figure(value: float) -> str:
    """A count with thousands separators; a latency to the hundredth of a millisecond."""
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


_LATENCY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(us|µs|ms|s)\s*$", re.IGNORECASE)
_TO_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


def parse_latency(text, option: str = "--budget-latency") -> float:
    """``"8ms"`` -> 8.0, ``"1.5s"`` -> 1500.0, ``"900us"`` -> 0.9 (milliseconds)."""
    match = _LATENCY.match(str(text))
    if not match:
        raise NasfaceError(f"{option} {text!r}: not a latency; write a positive number with a unit "
                           f"(us, ms, s), e.g. 8ms")
    value = float(match.group(1)) * _TO_MS[match.group(2).lower()]
    if value <= 0:
        raise NasfaceError(f"{option} {text!r}: a budget must be positive")
    return value
