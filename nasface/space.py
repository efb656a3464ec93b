"""A declarative block-level search space (``search_spaces/lfr.yaml``) and its sampling.

The YAML lists the choices; nothing about a space is written in Python.  ``SearchSpace.sample``
turns an Optuna trial (or any object with ``suggest_categorical``) into an ``ArchSpec``,
define-by-run, so a knob is only sampled where it exists (a VarG stage's S, a Seesaw stage's
split).  ``params_of`` is its inverse: the parameters that make a given spec, which is how the
seed presets are enqueued as baseline trials and tested to be points of the space.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import typing
from dataclasses import dataclass
from pathlib import Path

from nasface.blocks import EMBEDDING_KINDS, FAMILIES, HEAD_KINDS, EmbeddingSpec, HeadSpec
from nasface.errors import NasfaceError
from nasface.spec import (SEARCH_SPACES, ArchSpec, StageSpec, StemSpec, coerce_field, key_name, read_yaml, shown,
                          validate)

DEFAULT_SPACE = SEARCH_SPACES / "lfr.yaml"
STAGE_FIELDS = ("repeats", "width", "stride")


def _encode(value):
    """Optuna's categorical choices are scalars: a split [1, 3] travels as the string '1:3'."""
    return ":".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def _decode(value, hint):
    if isinstance(value, str) and typing.get_origin(hint) is tuple:
        return tuple(int(part) for part in value.split(":"))
    return value


def _choices(data, where: str, cls, field: str) -> tuple:
    if not isinstance(data, list) or not data:
        raise NasfaceError(f"{where}: expected a non-empty list of choices, got {shown(data)}")
    hint = typing.get_type_hints(cls)[field]
    return tuple(_encode(coerce_field(value, hint, f"{where}[{i}]")) for i, value in enumerate(data))


def _knobs(data, where: str, cls, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    if not isinstance(data, dict):
        raise NasfaceError(f"{where}: expected a mapping of field -> list of choices, got {shown(data)}")
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise NasfaceError(f"{where}.{key_name(unknown[0])}: unknown field (valid fields: {', '.join(fields)})")
    return {key: _choices(value, f"{where}.{key}", cls, key) for key, value in data.items()}


def _kinds(data: dict, where: str, allowed: tuple[str, ...] | dict, what: str) -> tuple:
    kinds = data.get("kind" if what != "block family" else "family")
    if not isinstance(kinds, list) or not kinds:
        raise NasfaceError(f"{where}: expected a non-empty list of {what} choices, got {shown(kinds)}")
    for kind in kinds:
        if not isinstance(kind, str) or kind not in allowed:
            raise NasfaceError(f"{where}: unknown {what} {shown(kind)} (choose from {', '.join(allowed)})")
    return tuple(kinds)


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input_size: int
    stem: dict
    head_kinds: tuple
    head: dict            # kind -> {field: choices}
    slots: int
    stage: dict           # repeats / width / stride -> choices
    families: tuple
    family_knobs: dict    # family -> {field: choices}
    embedding_kinds: tuple
    embedding: dict       # size / act -> choices
    embedding_knobs: dict  # kind -> {field: choices}
    path: str = ""

    # -- sampling -------------------------------------------------------------------------
    def sample(self, trial, name: str = "candidate") -> ArchSpec:
        """The spec for ``trial``'s choices (Optuna ``Trial``, ``FixedTrial``, or ``RandomChooser``)."""
        def pick(name: str, choices: tuple):
            return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))

        stem = StemSpec(**{key: pick(f"stem.{key}", choices) for key, choices in self.stem.items()})
        kind = pick("head.kind", self.head_kinds)
        head = HeadSpec(kind=kind, act=stem.act, **self._fields(pick, f"head.{kind}", self.head[kind], HeadSpec))
        stages = []
        for slot in range(1, self.slots + 1):
            repeats = self.stage["repeats"] if slot > 1 else tuple(r for r in self.stage["repeats"] if r > 0)
            count = pick(f"s{slot}.repeats", repeats)
            if count == 0:
                break
            family = pick(f"s{slot}.family", self.families)
            block_cls = FAMILIES[family]
            block = block_cls(**self._fields(pick, f"s{slot}.{family}", self.family_knobs[family], block_cls))
            stages.append(StageSpec(block=block, repeats=count, width=pick(f"s{slot}.width", self.stage["width"]),
                                    stride=pick(f"s{slot}.stride", self.stage["stride"])))
        kind = pick("emb.kind", self.embedding_kinds)
        embedding = EmbeddingSpec(kind=kind, size=pick("emb.size", self.embedding["size"]),
                                  act=pick("emb.act", self.embedding["act"]),
                                  **self._fields(pick, f"emb.{kind}", self.embedding_knobs[kind], EmbeddingSpec))
        return with_global_kernel(ArchSpec(name=name, input_size=self.input_size, stem=stem, head=head,
                                           stages=tuple(stages), embedding=embedding.unpinned()))

    @staticmethod
    def _fields(pick, prefix: str, knobs: dict, cls) -> dict:
        hints = typing.get_type_hints(cls)
        return {key: _decode(pick(f"{prefix}.{key}", choices), hints[key]) for key, choices in knobs.items()}

    # -- the inverse ----------------------------------------------------------------------
    def params_of(self, spec: ArchSpec) -> dict:
        """The parameters whose sample is ``spec``; NasfaceError naming the first that is not a choice."""
        params: dict = {}

        def put(name: str, value, choices: tuple) -> None:
            value = _encode(value)
            if value not in choices:
                raise NasfaceError(f"{spec.name} is not a point of the space {self.name}: {name} = {value!r} "
                                   f"is not among {list(choices)}")
            if len(choices) > 1:
                params[name] = value

        for key, choices in self.stem.items():
            put(f"stem.{key}", getattr(spec.stem, key), choices)
        put("head.kind", spec.head.kind, self.head_kinds)
        if spec.head.act != spec.stem.act:
            raise NasfaceError(f"{spec.name} is not a point of the space {self.name}: its head activation "
                               f"differs from its stem's")
        for key, choices in self.head[spec.head.kind].items():
            put(f"head.{spec.head.kind}.{key}", getattr(spec.head, key), choices)
        if len(spec.stages) > self.slots:
            raise NasfaceError(f"{spec.name} is not a point of the space {self.name}: {len(spec.stages)} stages "
                               f"for {self.slots} slots")
        for slot, stage in enumerate(spec.stages, start=1):
            put(f"s{slot}.repeats", stage.repeats, self.stage["repeats"])
            put(f"s{slot}.family", stage.family, self.families)
            for key, choices in self.family_knobs[stage.family].items():
                put(f"s{slot}.{stage.family}.{key}", getattr(stage.block, key), choices)
            put(f"s{slot}.width", stage.width, self.stage["width"])
            put(f"s{slot}.stride", stage.stride, self.stage["stride"])
        if len(spec.stages) < self.slots:
            put(f"s{len(spec.stages) + 1}.repeats", 0, self.stage["repeats"])
        put("emb.kind", spec.embedding.kind, self.embedding_kinds)
        put("emb.size", spec.embedding.size, self.embedding["size"])
        put("emb.act", spec.embedding.act, self.embedding["act"])
        for key, choices in self.embedding_knobs[spec.embedding.kind].items():
            put(f"emb.{spec.embedding.kind}.{key}", getattr(spec.embedding, key), choices)
        return params

    # -- size -----------------------------------------------------------------------------
    def size(self) -> int:
        """The number of distinct parameter settings (valid or not)."""
        def product(knobs: dict) -> int:
            return math.prod(len(choices) for choices in knobs.values())

        stem = product(self.stem) * sum(product(self.head[kind]) for kind in self.head_kinds)
        per_stage = (product({k: self.stage[k] for k in ("width", "stride")})
                     * sum(product(self.family_knobs[f]) for f in self.families))
        nonzero = len([r for r in self.stage["repeats"] if r > 0])
        networks = sum((nonzero * per_stage) ** n for n in range(1, self.slots + 1))
        embedding = (len(self.embedding["size"]) * len(self.embedding["act"])
                     * sum(product(self.embedding_knobs[k]) for k in self.embedding_kinds))
        return stem * networks * embedding

    def knobs(self) -> list[tuple[str, list]]:
        """(name, choices) of every knob, as ``nasface space`` prints them."""
        rows = [(f"stem.{k}", list(v)) for k, v in self.stem.items()]
        rows.append(("head.kind", list(self.head_kinds)))
        rows += [(f"head.{kind}.{k}", list(v)) for kind in self.head_kinds for k, v in self.head[kind].items()]
        rows.append(("stages.slots", [self.slots]))
        rows.append(("stages.family", list(self.families)))
        rows += [(f"stages.{k}", list(v)) for k, v in self.stage.items()]
        rows += [(f"stages.{f}.{k}", list(v)) for f in self.families for k, v in self.family_knobs[f].items()]
        rows.append(("embedding.kind", list(self.embedding_kinds)))
        rows += [(f"embedding.{k}", list(v)) for k, v in self.embedding.items()]
        rows += [(f"embedding.{kind}.{k}", list(v)) for kind in self.embedding_kinds
                 for k, v in self.embedding_knobs[kind].items()]
        return rows


GLOBAL_CONV_EMBEDDINGS = ("gdc", "varg")


def with_global_kernel(spec: ArchSpec) -> ArchSpec:
    """``spec`` with its global conv's kernel pinned to its final map, as the presets have it."""
    if spec.embedding.kind not in GLOBAL_CONV_EMBEDDINGS:
        return spec
    return dataclasses.replace(spec, embedding=dataclasses.replace(spec.embedding, kernel=validate(spec)))


WIDTH_QUANTUM = 16  # scaled widths stay multiples of 16: every group size and split of lfr.yaml divides it


def scale_widths(spec: ArchSpec, factor: float) -> ArchSpec:
    """``spec`` with every stage's width multiplied by ``factor`` (rounded to WIDTH_QUANTUM)."""
    stages = tuple(dataclasses.replace(stage, width=max(WIDTH_QUANTUM, int(round(stage.width * factor / WIDTH_QUANTUM))
                                                        * WIDTH_QUANTUM))
                   for stage in spec.stages)
    return dataclasses.replace(spec, stages=stages)


def fill_budget(spec: ArchSpec, budgets, max_factor: float = 4.0, steps: int = 12) -> tuple[ArchSpec, float]:
    """Widen ``spec``'s stages as far as the budgets allow (bisection on one width multiplier).

    A sampled structure then uses its budget instead of leaving it half spent.  Returns the
    widened spec and the multiplier (1.0 when it cannot grow, or is already over budget).
    """
    from nasface.model import count

    def fits(factor: float) -> ArchSpec | None:
        try:
            candidate = scale_widths(spec, factor)
        except NasfaceError:
            return None
        return candidate if budgets.fits(count(candidate, budgets.convention)) else None

    if not budgets.limits() or not budgets.fits(count(spec, budgets.convention)):
        return spec, 1.0
    low, high, best = 1.0, max_factor, spec
    if fits(high) is not None:
        return fits(high), high
    for _ in range(steps):
        middle = (low + high) / 2
        grown = fits(middle)
        if grown is not None:
            low, best = middle, grown
        else:
            high = middle
    return best, low


class RandomChooser:
    """Uniform random choices with Optuna's ``suggest_categorical`` signature (no study needed)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.params: dict = {}

    def suggest_categorical(self, name: str, choices: list):
        self.params[name] = self.rng.choice(choices)
        return self.params[name]


def feasible_sample(space: SearchSpace, budgets, draws: int, seed: int, keep: int = 0) -> dict:
    """Draw random points: the fractions that are valid and within budget; ``keep`` feasible specs.

    With ``keep``, draws continue (up to 200 per wanted spec) until that many feasible specs are found.
    """
    from nasface.model import count

    valid = feasible = 0
    specs: list[ArchSpec] = []
    limit = draws if not keep else keep * 200
    drawn = 0
    while drawn < limit and (not keep or len(specs) < keep):
        try:
            spec = space.sample(RandomChooser(seed * 1_000_003 + drawn), name=f"{space.name}-sample")
        except NasfaceError:
            drawn += 1
            continue
        drawn += 1
        valid += 1
        if budgets.fits(count(spec, budgets.convention)):
            feasible += 1
            if keep:
                specs.append(dataclasses.replace(spec, name=f"{space.name}-{seed}-{len(specs):03d}"))
    return {"valid": valid / max(1, drawn), "feasible": feasible / max(1, drawn), "specs": specs}


def load_space(path: str | os.PathLike | None = None) -> SearchSpace:
    """Read and check a search space YAML (the default space when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_SPACE
    data = read_yaml(path, "search space")
    try:
        return _space_from_dict(data, str(path))
    except NasfaceError as err:
        raise NasfaceError(f"{path}: {err}") from None


def _space_from_dict(data, path: str) -> SearchSpace:
    if not isinstance(data, dict):
        raise NasfaceError("space: expected a mapping with name, stem, head, stages, embedding")
    for key in ("stem", "head", "stages", "embedding"):
        if not isinstance(data.get(key), dict):
            raise NasfaceError(f"space.{key}: missing, or not a mapping")
    unknown = [key for key in data if key not in ("name", "input_size", "stem", "head", "stages", "embedding")]
    if unknown:
        raise NasfaceError(f"space.{key_name(unknown[0])}: unknown field")
    head, stages, embedding = data["head"], data["stages"], data["embedding"]
    for where, section, allowed in (("head", head, ("kind", *HEAD_KINDS)),
                                    ("embedding", embedding, ("kind", "size", "act", *EMBEDDING_KINDS)),
                                    ("stages", stages, (*STAGE_FIELDS, "slots", "family", *FAMILIES))):
        extra = [key for key in section if key not in allowed]
        if extra:
            raise NasfaceError(f"space.{where}.{key_name(extra[0])}: unknown field (valid: {', '.join(allowed)})")
    head_kinds = _kinds(head, "space.head.kind", HEAD_KINDS, "head")
    families = _kinds(stages, "space.stages.family", FAMILIES, "block family")
    embedding_kinds = _kinds(embedding, "space.embedding.kind", EMBEDDING_KINDS, "embedding")
    slots = stages.get("slots")
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 12:
        raise NasfaceError(f"space.stages.slots: expected a whole number of stage slots from 1 to 12, "
                           f"got {shown(slots)}")
    stage = {key: _choices(stages.get(key), f"space.stages.{key}", StageSpec, key) for key in STAGE_FIELDS}
    if any(r < 0 for r in stage["repeats"]) or not any(r > 0 for r in stage["repeats"]):
        raise NasfaceError("space.stages.repeats: choices must be >= 0, with at least one above 0")
    return SearchSpace(
        name=str(data.get("name", Path(path).stem)),
        input_size=coerce_field(data.get("input_size", 112), int, "space.input_size"),
        stem=_knobs(data["stem"], "space.stem", StemSpec),
        head_kinds=head_kinds,
        head={kind: _knobs(head.get(kind, {}), f"space.head.{kind}", HeadSpec, skip=("kind", "act"))
              for kind in head_kinds},
        slots=slots,
        stage=stage,
        families=families,
        family_knobs={family: _knobs(stages.get(family, {}), f"space.stages.{family}", FAMILIES[family])
                      for family in families},
        embedding_kinds=embedding_kinds,
        embedding={key: _choices(embedding.get(key, [default]), f"space.embedding.{key}", EmbeddingSpec, key)
                   for key, default in (("size", 512), ("act", "prelu"))},
        embedding_knobs={kind: _knobs(embedding.get(kind, {}), f"space.embedding.{kind}", EmbeddingSpec,
                                      skip=("kind", "size", "act", "kernel"))
                         for kind in embedding_kinds},
        path=path,
    )
