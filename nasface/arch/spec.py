"""Architecture specs: plain data that fully describes one face-embedding network.

    stem (3x3 conv) -> head block -> stages -> embedding block -> embedding

A spec is a tree of frozen dataclasses that round-trips losslessly through YAML / JSON.  Building
the torch module (``nasface.build_model``) and counting its cost (``nasface.count``) are two
readers of the same spec.  Every way a spec can be wrong raises ``NasfaceError`` naming the field
(``stages[2].width`` ...) and the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from nasface.core.atomic import write_atomic
from nasface.arch.blocks import FAMILIES, BlockSpec, EmbeddingSpec, HeadSpec
from nasface.arch.blocks.base import check_activation, conv_bn_cost, cost_ordered, larger_is_cheaper
from nasface.arch.cost import CostCounter, conv_output_size
from nasface.core.errors import NasfaceError
from nasface.core.plaindata import coerce_field, key_name, read_yaml, shown

if typing.TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+; only the annotations need it
    from importlib.resources.abc import Traversable

# Package data, so that an installed wheel has the presets and the default space (the one copy:
# `nasface spec PRESET -o FILE` writes a preset to edit, `nasface space` describes a space).
SEARCH_SPACES: Traversable = resources.files("nasface") / "resources" / "search_spaces"
PRESETS_DIR = SEARCH_SPACES / "presets"
INPUT_SIZE = 112
# The most blocks one stage may repeat: IR-ResNet-100, the deepest network of the papers, repeats 30;
# a larger count is a typo, and the network it describes could not be built or trained.
MAX_REPEATS = 1000
# The files a spec is read from and written to, by extension.
SPEC_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass(frozen=True)
class StemSpec:
    width: int = 64
    stride: int = cost_ordered(2, larger_is_cheaper)
    act: str = "prelu"

    def add_cost(self, counter: CostCounter) -> None:
        conv_bn_cost(counter, "stem", self.width, 3, self.stride, act=self.act)


@dataclass(frozen=True)
class StageSpec:
    block: BlockSpec
    repeats: int
    width: int
    stride: int = cost_ordered(1, larger_is_cheaper)

    @property
    def family(self) -> str:
        return self.block.family


@dataclass(frozen=True)
class ArchSpec:
    name: str
    stem: StemSpec
    head: HeadSpec
    stages: tuple[StageSpec, ...]
    embedding: EmbeddingSpec
    input_size: int = INPUT_SIZE

    def __post_init__(self):
        validate(self)  # every ArchSpec that exists is a network that can be built

    def blocks(self):
        """Every block in order: (name, stage index, block spec, cin, cout, stride)."""
        cin = self.stem.width
        for index, stage in enumerate(self.stages):
            for repeat in range(stage.repeats):
                stride = stage.stride if repeat == 0 else 1
                yield f"stage{index + 1}.block{repeat + 1}", index, stage.block, cin, stage.width, stride
                cin = stage.width

    @property
    def final_channels(self) -> int:
        return self.stages[-1].width if self.stages else self.stem.width


# -- plain data <-> dataclasses -----------------------------------------------------------------
def _fields_from(cls, data, where: str, skip: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise NasfaceError(f"{where}: expected a mapping of fields, got {shown(data)}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    unknown = [key for key in data if key not in known]
    if unknown:
        raise NasfaceError(f"{where}.{key_name(unknown[0])}: unknown field (valid fields: {', '.join(known)})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.name in data:
            kwargs[f.name] = coerce_field(data[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING:
            raise NasfaceError(f"{where}.{f.name}: missing required field")
    return kwargs


def _stage_from(data, where: str) -> StageSpec:
    if not isinstance(data, dict):
        raise NasfaceError(f"{where}: expected a mapping with family, repeats, width, stride, got {shown(data)}")
    family = data.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        raise NasfaceError(f"{where}.family: unknown block family {shown(family)} "
                           f"(choose from {', '.join(FAMILIES)})")
    block_cls = FAMILIES[family]
    stage_keys = ("repeats", "width", "stride")
    block_data = {k: v for k, v in data.items() if k not in stage_keys and k != "family"}
    stage_data = {k: v for k, v in data.items() if k in stage_keys}
    block = block_cls(**_fields_from(block_cls, block_data, where))
    return StageSpec(block=block, **_fields_from(StageSpec, stage_data, where, skip=("block",)))


def spec_from_dict(data, where: str = "spec") -> ArchSpec:
    """Build and validate a spec from plain data (what a YAML / JSON file holds)."""
    if not isinstance(data, dict):
        raise NasfaceError(f"{where}: expected a mapping with name, stem, head, stages, embedding")
    known = ("name", "input_size", "stem", "head", "stages", "embedding")
    unknown = [key for key in data if key not in known]
    if unknown:
        raise NasfaceError(f"{where}.{key_name(unknown[0])}: unknown field (valid fields: {', '.join(known)})")
    for key in ("name", "stem", "stages", "embedding"):
        if key not in data:
            raise NasfaceError(f"{where}.{key}: missing required field")
    stages = data["stages"]
    if not isinstance(stages, list) or not stages:
        raise NasfaceError(f"{where}.stages: expected a non-empty list of stages")
    return ArchSpec(
        name=coerce_field(data["name"], str, f"{where}.name"),
        input_size=coerce_field(data.get("input_size", INPUT_SIZE), int, f"{where}.input_size"),
        stem=StemSpec(**_fields_from(StemSpec, data["stem"], f"{where}.stem")),
        head=HeadSpec(**_fields_from(HeadSpec, data.get("head", {}), f"{where}.head")),
        stages=tuple(_stage_from(stage, f"{where}.stages[{i}]") for i, stage in enumerate(stages)),
        embedding=EmbeddingSpec(**_fields_from(EmbeddingSpec, data["embedding"], f"{where}.embedding")),
    )


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def spec_to_dict(spec: ArchSpec, every_field: bool = True) -> dict:
    """Plain data (dicts, lists, numbers, strings) that ``spec_from_dict`` turns back into ``spec``.

    With ``every_field`` (what studies, logs and caches key and store specs by, so it never changes) the
    head and embedding hold every field; without it, only those their kind reads (what a person sees).
    """
    def fields(obj) -> dict:
        unused = () if every_field else getattr(obj, "unused_knobs", tuple)()
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in unused}

    return {
        "name": spec.name,
        "input_size": spec.input_size,
        "stem": fields(spec.stem),
        "head": fields(spec.head),
        "stages": [{"family": stage.family, "repeats": stage.repeats, "width": stage.width,
                    "stride": stage.stride, **fields(stage.block)} for stage in spec.stages],
        "embedding": fields(spec.embedding),
    }


# -- validation ---------------------------------------------------------------------------------
def _check_positive(where: str, value: int) -> None:
    if value <= 0:
        raise NasfaceError(f"{where}: must be a positive integer, got {value}")


def stage_blocks(spec: ArchSpec):
    """Each stage's distinct blocks: (stage index, block spec, cin, cout, stride, times).

    A stage's first block may change the width and stride; its other ``repeats - 1`` blocks are one
    identical block (width -> width, stride 1, on the same map), given once with ``times``, so that
    what walks them (validation, the cost count) does not grow with the repeats.
    """
    cin = spec.stem.width
    for index, stage in enumerate(spec.stages):
        yield index, stage.block, cin, stage.width, stage.stride, 1
        if stage.repeats > 1:
            yield index, stage.block, stage.width, stage.width, 1, stage.repeats - 1
        cin = stage.width


def validate(spec: ArchSpec) -> int:
    """Raise ``NasfaceError`` for the first thing wrong with ``spec``; return the final map size."""
    _check_positive("spec.input_size", spec.input_size)
    _check_positive("spec.stem.width", spec.stem.width)
    if spec.stem.stride not in (1, 2):
        raise NasfaceError(f"spec.stem.stride: must be 1 or 2, got {spec.stem.stride}")
    check_activation("spec.stem.act", spec.stem.act)
    size = conv_output_size(spec.input_size, 3, spec.stem.stride, 1)
    spec.head.check("spec.head", spec.stem.width)
    size = conv_output_size(size, 3, spec.head.stride, 1)
    for index, stage in enumerate(spec.stages):
        where = f"spec.stages[{index}]"
        _check_positive(f"{where}.repeats", stage.repeats)
        if stage.repeats > MAX_REPEATS:
            raise NasfaceError(f"{where}.repeats: {stage.repeats:,} blocks in one stage is beyond the "
                               f"{MAX_REPEATS:,} nasface allows (the deepest face networks repeat about 30); lower it")
        _check_positive(f"{where}.width", stage.width)
        if stage.stride not in (1, 2):
            raise NasfaceError(f"{where}.stride: must be 1 or 2, got {stage.stride}")
    for index, block, cin, cout, stride, _ in stage_blocks(spec):
        block.check(f"spec.stages[{index}]", cin, cout, stride)
        if stride > 1:
            if size < 2:
                raise NasfaceError(f"spec.stages[{index}].stride: the feature map has already collapsed to "
                                   f"{size}x{size} and cannot be down-sampled again; use stride 1")
            size = conv_output_size(size, 3, stride, 1)
    spec.embedding.check("spec.embedding", spec.final_channels, size)
    return size


# -- files and presets --------------------------------------------------------------------------
def preset_names() -> list[str]:
    return sorted(entry.name.removesuffix(".yaml") for entry in PRESETS_DIR.iterdir() if entry.name.endswith(".yaml"))


def load_spec(name_or_path: str | os.PathLike | ArchSpec) -> ArchSpec:
    """A preset name (``mobilefacenet``), or the path of a spec YAML / JSON file."""
    if isinstance(name_or_path, ArchSpec):
        return name_or_path
    text = str(name_or_path)
    preset = PRESETS_DIR / f"{text}.yaml"
    if os.sep not in text and not text.endswith((".yaml", ".yml", ".json")):
        if not preset.is_file():
            raise NasfaceError(f"unknown preset {text!r} (presets: {', '.join(preset_names())}; "
                               f"or give the path of a spec file)")
        path = preset
    else:
        path = Path(text)
    data = read_yaml(path, "spec")
    try:
        return spec_from_dict(data)
    except NasfaceError as err:
        raise NasfaceError(f"{path}: {err}") from None


def dump_spec(spec: ArchSpec, fmt: str = "yaml", every_field: bool = False) -> str:
    """``spec`` as YAML or JSON text; ``every_field``: see ``spec_to_dict``."""
    data = spec_to_dict(spec, every_field)
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def spec_format(path: Path) -> str:
    """"yaml" or "json", by ``path``'s extension; anything else is refused rather than guessed."""
    fmt = SPEC_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise NasfaceError(f"{path}: a spec file ends in {', '.join(SPEC_FORMATS)} (which says YAML or JSON); "
                           f"rename it")
    return fmt


def save_spec(spec: ArchSpec, path: str | os.PathLike, make_folders: bool = True) -> Path:
    """Write ``spec`` to ``path`` (YAML or JSON by its extension); ``make_folders``: create missing folders."""
    path = Path(path)
    fmt = spec_format(path)
    if not make_folders and not path.parent.is_dir():
        raise NasfaceError(f"{path}: the folder {path.parent} does not exist; create it or choose another path")
    write_atomic(path, dump_spec(spec, fmt))
    return path
