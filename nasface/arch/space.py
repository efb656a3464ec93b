"""A declarative block-level search space (``nasface/resources/search_spaces/lfr.yaml``) and its sampling.

The YAML lists the choices; nothing about a space is written in Python.  One walk over the space
(``SearchSpace.walk``) meets its knobs in order, define-by-run, so a knob is only met where it
exists (a VarG stage's S, a Seesaw stage's split), and builds the ``ArchSpec`` they make.  Whoever
answers the knobs decides what the walk is: an Optuna trial (``sample``), a spec (``params_of``, its
inverse: the parameters that make a given spec, which is how the seed presets are enqueued as
baseline trials), or each knob's declared cost order (``cheapest_spec``).

Over 400 lines on purpose: reading a space, its one walk and the choosers that answer the walk (a
trial, a spec, the cost order) are one job; apart, each would have to know the others' knobs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nasface.arch.blocks import EMBEDDING_KINDS, FAMILIES, HEAD_KINDS, EmbeddingSpec, HeadSpec
from nasface.arch.blocks.base import COST_ORDER, default_cost_key
from nasface.core.errors import NasfaceError
from nasface.arch.spec import SEARCH_SPACES, ArchSpec, StageSpec, StemSpec, validate
from nasface.core.plaindata import coerce_field, key_name, read_yaml, shown

DEFAULT_SPACE = SEARCH_SPACES / "lfr.yaml"
SECTIONS = ("stem", "head", "stages", "embedding")
STAGE_FIELDS = ("repeats", "width", "stride")


def _encode(value):
    """Optuna's categorical choices are scalars: a split [1, 3] travels as the string '1:3'."""
    return ":".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def _decode(value, hint):
    if isinstance(value, str) and typing.get_origin(hint) is tuple:
        return tuple(int(part) for part in value.split(":"))
    return value


@functools.lru_cache(maxsize=None)
def _declared(owner: type) -> dict[str, tuple]:
    """field -> (type hint, cost order) of a spec dataclass, as its fields declare them."""
    hints = typing.get_type_hints(owner)
    return {f.name: (hints[f.name], f.metadata.get(COST_ORDER, default_cost_key)) for f in dataclasses.fields(owner)}


def _parameter(section: str, slot: int | None, rest: str) -> str:
    """A knob's trial parameter, as studies store them: a stage's under its slot (``s2.``), the embedding's
    under ``emb.``; ``knob_of`` reads it back."""
    short = f"s{slot}" if section == "stages" else {"embedding": "emb"}.get(section, section)
    return f"{short}.{rest}"


_STAGE_PARAMETER = re.compile(r"s(\d+)\.(.+)")


def knob_of(parameter: str) -> tuple[str, int | None]:
    """The knob a trial parameter sets, as ``nasface space`` lists it, and the stage slot it sets it in
    (None outside the stages): ``s2.flgc.groups`` -> ``("stages.flgc.groups", 2)``."""
    stage = _STAGE_PARAMETER.fullmatch(parameter)
    if stage:
        return f"stages.{stage[2]}", int(stage[1])
    short, rest = parameter.split(".", 1)
    return f"{'embedding' if short == 'emb' else short}.{rest}", None


def knob_summary(params: dict) -> dict:
    """A trial's choices (its parameters) by the knob they set, named as ``nasface space`` lists it: one
    value, or a stage knob's choices slot by slot joined with '/' (``stages.width``: ``'64/128'``).

    Only knobs with more than one choice are parameters; ``--fill-budget`` widens the stages after
    these choices (the trial's spec has the final widths)."""
    by_knob: dict[str, list] = {}
    for parameter, choice in params.items():
        knob, slot = knob_of(parameter)
        by_knob.setdefault(knob, []).append((slot, choice))
    return {knob: choices[0][1] if choices[0][0] is None
            else "/".join(str(choice) for _, choice in sorted(choices, key=lambda pair: pair[0]))
            for knob, choices in by_knob.items()}


@dataclass(frozen=True)
class Knob:
    """One choice of the space, where the walk meets it.

    ``name`` is the trial parameter (``s2.flgc.groups``), ``path`` where its value lives in a spec
    (``("stages", 1, "block", "groups")``), ``owner`` the spec dataclass whose field it sets.
    """

    name: str
    path: tuple
    choices: tuple   # as trials store them: a split [1, 3] as '1:3'
    owner: type
    selects: bool = False  # its choice decides which knobs follow: a head kind, a block family, an embedding kind

    def decode(self, choice):
        # a stage's family is no field of its own (StageSpec.family is the block's): nothing to decode
        hint, _ = _declared(self.owner).get(self.path[-1], (None, None))
        return _decode(choice, hint)

    def cheapest(self):
        """The choice that costs least by the order its field declares (``nasface.arch.blocks.base.cost_ordered``)."""
        _, order = _declared(self.owner)[self.path[-1]]
        return min(self.choices, key=lambda choice: order(self.decode(choice)))


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


def _value_at(spec: ArchSpec, path: tuple):
    """What ``spec`` holds at ``path``; a stage it does not have has 0 repeats (the walk stops there)."""
    value = spec
    for step in path:
        if isinstance(step, int):
            if step >= len(value):
                return 0
            value = value[step]
        else:
            value = getattr(value, step)
    return value


def _difference(made, wanted, where: str = "spec") -> tuple[str, object, object]:
    """The first field (as a path, ``spec.head.act``) where ``wanted`` differs from ``made``, and both values."""
    if dataclasses.is_dataclass(made) and type(made) is type(wanted):
        pairs = [(f".{f.name}", getattr(made, f.name), getattr(wanted, f.name)) for f in dataclasses.fields(made)]
    elif isinstance(made, tuple) and isinstance(wanted, tuple) and len(made) == len(wanted):
        pairs = [(f"[{index}]", *pair) for index, pair in enumerate(zip(made, wanted))]
    else:
        return where, made, wanted
    step, inner_made, inner_wanted = next(pair for pair in pairs if pair[1] != pair[2])
    return _difference(inner_made, inner_wanted, where + step)


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

    # -- the one walk ---------------------------------------------------------------------
    def walk(self, choose: Callable[[Knob], object], name: str) -> ArchSpec:
        """The spec whose knobs ``choose`` answers (with one of ``knob.choices``), met in sampling order."""
        def pick(section: str, slot: int | None, rest: str, path: tuple, choices: tuple, owner: type,
                 selects: bool = False):
            knob = Knob(_parameter(section, slot, rest), path, choices, owner, selects)
            return knob.decode(choose(knob))

        def fields(section: str, slot: int | None, kind: str, path: tuple, knobs: dict, owner: type) -> dict:
            """The fields of one part: the stem, or a head, block or embedding of ``kind``."""
            prefix = f"{kind}." if kind else ""
            return {key: pick(section, slot, prefix + key, (*path, key), choices, owner)
                    for key, choices in knobs.items()}

        stem = StemSpec(**fields("stem", None, "", ("stem",), self.stem, StemSpec))
        kind = pick("head", None, "kind", ("head", "kind"), self.head_kinds, HeadSpec, selects=True)
        head = HeadSpec(kind=kind, act=stem.act, **fields("head", None, kind, ("head",), self.head[kind], HeadSpec))
        stages = []
        for slot in range(1, self.slots + 1):
            at = ("stages", slot - 1)
            repeats = self.stage["repeats"] if slot > 1 else tuple(r for r in self.stage["repeats"] if r > 0)
            count = pick("stages", slot, "repeats", (*at, "repeats"), repeats, StageSpec)
            if count == 0:
                break
            family = pick("stages", slot, "family", (*at, "family"), self.families, StageSpec, selects=True)
            block_cls = FAMILIES[family]
            block = block_cls(**fields("stages", slot, family, (*at, "block"), self.family_knobs[family], block_cls))
            stages.append(StageSpec(block=block, repeats=count,
                                    width=pick("stages", slot, "width", (*at, "width"), self.stage["width"], StageSpec),
                                    stride=pick("stages", slot, "stride", (*at, "stride"), self.stage["stride"],
                                                StageSpec)))
        kind = pick("embedding", None, "kind", ("embedding", "kind"), self.embedding_kinds, EmbeddingSpec,
                    selects=True)
        embedding = EmbeddingSpec(kind=kind,
                                  **fields("embedding", None, "", ("embedding",), self.embedding, EmbeddingSpec),
                                  **fields("embedding", None, kind, ("embedding",), self.embedding_knobs[kind],
                                           EmbeddingSpec))
        return with_global_kernel(ArchSpec(name=name, input_size=self.input_size, stem=stem, head=head,
                                           stages=tuple(stages), embedding=embedding))

    def sample(self, trial, name: str = "candidate") -> ArchSpec:
        """The spec for ``trial``'s choices (Optuna ``Trial``, ``FixedTrial``, or ``RandomChooser``)."""
        def suggest(knob: Knob):
            if len(knob.choices) == 1:
                return knob.choices[0]
            return trial.suggest_categorical(knob.name, list(knob.choices))

        return self.walk(suggest, name)

    def params_of(self, spec: ArchSpec) -> dict:
        """The parameters whose sample is ``spec``; NasfaceError naming the first that is not a choice."""
        params: dict = {}

        def read(knob: Knob):
            value = _encode(_value_at(spec, knob.path))
            if value not in knob.choices:
                raise NasfaceError(f"{spec.name} is not a point of the space {self.name}: {knob.name} = {value!r} "
                                   f"is not among {list(knob.choices)}")
            if len(knob.choices) > 1:
                params[knob.name] = value
            return value

        if len(spec.stages) > self.slots:
            raise NasfaceError(f"{spec.name} is not a point of the space {self.name}: {len(spec.stages)} stages "
                               f"for {self.slots} slots")
        made = self.walk(read, spec.name)
        wanted = with_global_kernel(dataclasses.replace(spec, embedding=spec.embedding.unpinned()))
        if made != wanted:  # a field the space fixes or derives, such as the head's activation (the stem's)
            where, made_value, spec_value = _difference(made, wanted)
            raise NasfaceError(f"{spec.name} is not a point of the space {self.name}: {where} is {shown(spec_value)}, "
                               f"where the space makes {shown(made_value)}")
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
    from nasface.arch.model import count

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


class _CostChooser:
    """Answers each knob with ``point``'s choice where it holds one; otherwise a knob that selects what
    follows (a kind, a family) with its first choice, keeping the points for its others in ``untried``,
    and any other knob with its cheapest choice by its field's cost order."""

    def __init__(self, point: dict):
        self.point = point
        self.answers: dict = {}
        self.met: list[Knob] = []
        self.untried: list[dict] = []

    def __call__(self, knob: Knob):
        if knob.name in self.point:
            choice = self.point[knob.name]
        elif knob.selects:
            choice, *others = knob.choices
            self.untried += [{**self.point, **self.answers, knob.name: other} for other in others]
        else:
            choice = knob.cheapest()
        self.met.append(knob)
        self.answers[knob.name] = choice
        return choice


def cheapest_spec(space: SearchSpace) -> ArchSpec:
    """The cheapest architecture (by FLOPs) the space makes, to report budgets nothing can meet.

    Every head kind x block family x embedding kind, each other knob at the choice its field's cost
    order puts first (one stage, the narrowest, the longest strides, no SE ...); from the cheapest of
    these, one knob at a time changes while that saves FLOPs, for where the orders alone miss it (a
    ``varg`` embedding skips its 1x1 conv when the last stage already has its width; a further stride-2
    stage shrinks an ``fc`` embedding's FC layer).
    """
    from nasface.arch.model import count

    def costed(point: dict) -> tuple[_CostChooser, tuple[int, ArchSpec] | None]:
        chooser = _CostChooser(point)
        try:
            spec = space.walk(chooser, "cheapest")
        except NasfaceError:
            return chooser, None
        return chooser, (count(spec)["flops"], spec)

    best, points = None, [{}]
    while points:
        chooser, found = costed(points.pop())
        points += chooser.untried
        if found is not None and (best is None or found[0] < best[1][0]):
            best = chooser, found
    while best is not None:
        chooser, (flops, spec) = best
        moves = ({**chooser.answers, knob.name: choice} for knob in chooser.met for choice in knob.choices
                 if choice != chooser.answers[knob.name])
        cheaper = next((move for move in map(costed, moves) if move[1] is not None and move[1][0] < flops), None)
        if cheaper is None:
            return spec
        best = cheaper
    candidates = []
    for seed in range(200):  # no mix of kinds with the other knobs at their cheapest is valid
        try:
            candidates.append(space.sample(RandomChooser(seed), name="cheapest"))
        except NasfaceError:
            continue
    if not candidates:
        raise NasfaceError(f"the space {space.name} makes no valid architecture")
    return min(candidates, key=lambda spec: count(spec)["flops"])


def feasible_sample(space: SearchSpace, budgets, draws: int, seed: int, keep: int = 0) -> dict:
    """Draw random points: the fractions that are valid and within budget; ``keep`` feasible specs.

    With ``keep``, draws continue (up to 200 per wanted spec) until that many feasible specs are found.
    """
    from nasface.arch.model import count

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
    """Read and check a search space: a YAML path, the name of a bundled space (``lfr``, ``lfr-wide``),
    or the default space when ``path`` is None."""
    path = Path(path) if path is not None else DEFAULT_SPACE
    if path.suffix == "" and path.name == str(path) and (SEARCH_SPACES / f"{path}.yaml").is_file():
        path = SEARCH_SPACES / f"{path}.yaml"
    data = read_yaml(path, "search space")
    try:
        return _space_from_dict(data, str(path))
    except NasfaceError as err:
        raise NasfaceError(f"{path}: {err}") from None


def _space_from_dict(data, path: str) -> SearchSpace:
    if not isinstance(data, dict):
        raise NasfaceError("space: expected a mapping with name, stem, head, stages, embedding")
    for key in SECTIONS:
        if not isinstance(data.get(key), dict):
            raise NasfaceError(f"space.{key}: missing, or not a mapping")
    unknown = [key for key in data if key not in ("name", "input_size", *SECTIONS)]
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
        # a kind's knobs are the fields it reads: a dw head has no group_size to choose
        head={kind: _knobs(head.get(kind, {}), f"space.head.{kind}", HeadSpec,
                           skip=("kind", "act", *HeadSpec(kind=kind).unused_knobs()))
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
                                      skip=("kind", "size", "act", "kernel",
                                            *EmbeddingSpec(kind=kind).unused_knobs()))
                         for kind in embedding_kinds},
        path=path,
    )
