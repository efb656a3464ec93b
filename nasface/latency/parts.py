"""The parts of a network whose latencies a table holds: stem, head, each block, embedding.

A part's key is everything that decides its run time on a runtime: the part's kind, every field of its
spec (family, expansion, kernel, group size, groups, split, shuffle or share, SE, activation ...), its
channels in and out, its stride and the size of the map it takes.  Two blocks with equal keys run the
same layers on the same shapes, so one measurement serves both, and a key names its part whole
(``part_from_key``: a table's rows hold keys).  Computing the keys runs no torch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import dataclass

from nasface.arch.blocks import FAMILIES, EmbeddingSpec, HeadSpec
from nasface.arch.cost import CostCounter, conv_output_size
from nasface.arch.spec import ArchSpec, StemSpec
from nasface.core.plaindata import coerce_field

SHAPE = ("cin", "cout", "stride", "size")  # what a key holds beside its spec's fields
ENDS = {"stem": StemSpec, "head": HeadSpec, "embedding": EmbeddingSpec}  # the specs of the parts not blocks
# An embedding's own size (its output dimension) is keyed apart from the map's, only where it is not this
# default: so the keys of tables measured before it was keyed, every one of them of this size, still hold.
EMBEDDING_SIZE = EmbeddingSpec.size


@dataclass(frozen=True)
class Part:
    """One part of a network on its input: ``spec`` is its StemSpec, HeadSpec, block spec or EmbeddingSpec."""

    kind: str  # stem, head, block or embedding
    spec: object
    cin: int
    cout: int | None  # None for the embedding (its spec holds its size)
    stride: int
    size: int  # the input map is size x size

    @functools.cached_property
    def key(self) -> str:
        fields = {f.name: getattr(self.spec, f.name) for f in dataclasses.fields(self.spec)}
        family = getattr(self.spec, "family", None)
        shape = {"cin": self.cin, "cout": self.cout, "stride": self.stride, "size": self.size}
        if self.kind == "embedding" and self.spec.size != EMBEDDING_SIZE:
            shape["embedding_size"] = self.spec.size  # a key's ``size`` is the map's
        return json.dumps({"part": self.kind, **({"family": family} if family else {}), **fields, **shape},
                          sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def prelu_elements(self) -> int:
        """The elements its PReLUs take, by its cost rule."""
        counter = CostCounter(self.cin, self.size, self.size)
        if self.kind == "block":
            self.spec.add_cost(counter, "", self.cout, self.stride)
        else:
            self.spec.add_cost(counter)
        return counter.prelu_elems


# A search meets the same part on the same input many times over: the same Part (and its key) serves.
_part = functools.lru_cache(maxsize=65536)(Part)


@functools.lru_cache(maxsize=65536)
def part_from_key(key: str) -> Part:
    """The part ``key`` names."""
    found = json.loads(key)
    cls = ENDS.get(found["part"]) or FAMILIES[found["family"]]
    hints = typing.get_type_hints(cls)
    fields = {f.name: coerce_field(found[f.name], hints[f.name], f.name)
              for f in dataclasses.fields(cls) if f.name in found}
    if found["part"] == "embedding":
        fields["size"] = found.get("embedding_size", EMBEDDING_SIZE)
    return _part(found["part"], cls(**fields), *(found[name] for name in SHAPE))


def parts(spec: ArchSpec) -> list[Part]:
    """Every part of ``spec``, in the order the network runs them."""
    size = spec.input_size
    found = [_part("stem", spec.stem, 3, spec.stem.width, spec.stem.stride, size)]
    size = conv_output_size(size, 3, spec.stem.stride, 1)
    if spec.head.kind != "none":
        found.append(_part("head", spec.head, spec.stem.width, spec.stem.width, spec.head.stride, size))
    size = conv_output_size(size, 3, spec.head.stride, 1)
    for _, _, block, cin, cout, stride in spec.blocks():
        found.append(_part("block", block, cin, cout, stride, size))
        if stride > 1:
            size = conv_output_size(size, 3, stride, 1)
    found.append(_part("embedding", spec.embedding, spec.final_channels, None, 1, size))
    return found


def part_keys(spec: ArchSpec) -> list[str]:
    """The key of every part of ``spec``, in the order the network runs them."""
    return [part.key for part in parts(spec)]
