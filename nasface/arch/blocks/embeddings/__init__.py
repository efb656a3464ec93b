"""Embedding blocks: from the last feature map to the face embedding.

- ``gdc`` (MobileFaceNet): 1x1 conv to ``width`` (BN, act) -> global depthwise conv (BN, linear)
  -> FC to the embedding without bias -> BN.
- ``varg`` (VarGFaceNet Fig. 1d): 1x1 conv to ``width`` (last_channels, 1024 in the paper; skipped
  when the input already has that width) -> global variable group conv with ``group_size``
  channels per group (BN) -> 1x1 conv to width/2 (BN, act) -> FC with bias -> BN.
- ``fc`` (MobiFace, IR-ResNet): 1x1 conv to ``width`` (BN, act), or only BN when ``width`` is
  null -> FC with bias on the flattened map -> BN.
- ``gap`` (VarGNet): 1x1 conv to ``width`` (BN, act) when given -> global average pool -> FC
  with bias -> BN.

The global convolutions' kernel is the final feature-map size; ``kernel`` in a spec pins it,
and a spec whose map does not end at that size is refused.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import check_activation, check_divisible, check_unused, conv_bn_cost, module_side
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn

EMBEDDING_KINDS = ("gdc", "varg", "fc", "gap")


@dataclass(frozen=True)
class EmbeddingSpec:
    kind: str = "gdc"
    size: int = 512
    width: int | None = 512
    kernel: int | None = None
    group_size: int = 8
    act: str = "prelu"

    def unused_knobs(self) -> tuple[str, ...]:
        """The fields this kind of embedding does not read (left out when a spec is written)."""
        return () if self.kind == "varg" else ("group_size",)

    def unpinned(self) -> "EmbeddingSpec":
        return dataclasses.replace(self, kernel=None)

    def check(self, where: str, channels: int, map_size: int) -> None:
        if self.kind not in EMBEDDING_KINDS:
            raise NasfaceError(f"{where}.kind: unknown embedding {self.kind!r} "
                               f"(choose from {', '.join(EMBEDDING_KINDS)})")
        if self.size <= 0:
            raise NasfaceError(f"{where}.size: must be a positive integer, got {self.size}")
        if self.width is not None and self.width <= 0:
            raise NasfaceError(f"{where}.width: must be a positive integer or null, got {self.width}")
        if self.width is None and self.kind in ("gdc", "varg"):
            raise NasfaceError(f"{where}.width: the {self.kind} embedding needs a width (e.g. 512)")
        check_activation(f"{where}.act", self.act)
        check_unused(self, where, f"a {self.kind} embedding", "a varg embedding")
        if self.kind == "varg":
            check_divisible(f"{where}.width", self.width, self.group_size,
                            f"the global variable group conv holds group_size={self.group_size} channels per group")
            if self.width < 2:
                raise NasfaceError(f"{where}.width: the varg embedding halves its width; use at least 2")
        if self.kernel is not None:
            if map_size < self.kernel:
                raise NasfaceError(f"{where}.kernel: the feature map collapses to {map_size}x{map_size}, below "
                                   f"the {self.kernel}x{self.kernel} embedding kernel; remove a stride-2 stage "
                                   f"or set kernel to {map_size}")
            if map_size > self.kernel:
                raise NasfaceError(f"{where}.kernel: the final feature map is {map_size}x{map_size}, larger than "
                                   f"the {self.kernel}x{self.kernel} embedding kernel; add a stride-2 stage "
                                   f"or set kernel to {map_size}")

    def add_cost(self, counter: CostCounter) -> None:
        with counter.in_section("embedding"):
            kernel = counter.height
            if self.kind == "gdc":
                conv_bn_cost(counter, "embedding.conv", self.width, act=self.act)
                conv_bn_cost(counter, "embedding.global", self.width, kernel, groups=self.width, padding=0)
                counter.linear("embedding.fc", self.width, self.size, bias=False)
            elif self.kind == "varg":
                if counter.channels != self.width:
                    conv_bn_cost(counter, "embedding.conv", self.width, act=self.act)
                conv_bn_cost(counter, "embedding.global", self.width, kernel,
                             groups=self.width // self.group_size, padding=0)
                conv_bn_cost(counter, "embedding.pointwise", self.width // 2, act=self.act)
                counter.linear("embedding.fc", self.width // 2, self.size, bias=True)
            else:
                if self.width is not None:
                    conv_bn_cost(counter, "embedding.conv", self.width, act=self.act)
                else:
                    counter.batchnorm("embedding.bn_in")
                flat = counter.channels if self.kind == "gap" else counter.elems
                counter.linear("embedding.fc", flat, self.size, bias=True)
            counter.batchnorm("embedding.bn", self.size)
            counter.set_shape(self.size, 1, 1)

    def build(self, channels: int, map_size: int) -> nn.Module:
        from nasface.arch.blocks.embeddings.module import embedding_block

        return embedding_block(self, channels, map_size)


__getattr__ = module_side(__name__)
