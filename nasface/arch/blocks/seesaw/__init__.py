"""SeesawFaceNets' Seesaw block (SeesawFaceNets Fig. 1, Tables 1, 2, 6).

An inverted bottleneck whose two pointwise convolutions are *uneven* group convolutions: the
channels are split ``small:large`` (1:3 in the paper) and each part has its own 1x1 conv.
Information crosses the groups in one of two ways:

- ``shuffle``: the expanded channels are interleaved (a two-group channel shuffle) before the
  depthwise conv, and the projection splits them small-first, as the expansion did;
- ``share``: no permutation; the projection splits large-first, so each projection group reads
  channels that came out of both expansion groups.

Swish, SE on the expanded channels (reduction 4), linear projection, residual when the shape is
kept.  ``mapping`` adds DW-SeesawFaceNet V2's skip branch (max-pool + 1x1 conv) to the blocks
that have no residual.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import (BlockSpec, check_activation, check_divisible, check_expansion, check_se_ratio,
                                      conv_bn_cost, cost_ordered, module_side, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn

VARIANTS = ("shuffle", "share")


@dataclass(frozen=True)
class SeesawSpec(BlockSpec):
    family = "seesaw"
    expansion: float = 2.0
    # the evener the split, the fewer pointwise weights: two equal groups hold the fewest
    split: tuple[int, int] = cost_ordered((1, 3), lambda split: max(split) / sum(split))
    variant: str = "shuffle"
    se_ratio: int = cost_ordered(4, se_ratio_cost)
    act: str = "swish"
    mapping: bool = False

    def hidden(self, cin: int) -> int:
        return int(round(cin * self.expansion))

    def small(self, channels: int) -> int:
        return channels * self.split[0] // sum(self.split)

    def projection_slices(self, hidden: int, cout: int) -> tuple[tuple[int, int], tuple[int, int]]:
        small = (self.small(hidden), self.small(cout))
        large = (hidden - small[0], cout - small[1])
        return (small, large) if self.variant == "shuffle" else (large, small)

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        if self.variant not in VARIANTS:
            raise NasfaceError(f"{where}.variant: unknown Seesaw variant {self.variant!r} "
                               f"(choose from {', '.join(VARIANTS)})")
        if len(self.split) != 2 or min(self.split) <= 0:
            raise NasfaceError(f"{where}.split: needs two positive parts such as [1, 3], got {list(self.split)}")
        check_expansion(where, self.expansion)
        hidden = self.hidden(cin)
        ratio = f"{self.split[0]}:{self.split[1]}"
        parts = sum(self.split)
        check_divisible(f"{where} input", cin, parts, f"the uneven split {ratio} needs whole channels")
        if self.variant == "shuffle":
            check_divisible(f"{where}.expansion (hidden width)", hidden, math.lcm(2, parts),
                            f"the uneven split {ratio} and the two-group shuffle need whole channels")
        else:
            check_divisible(f"{where}.expansion (hidden width)", hidden, parts,
                            f"the uneven split {ratio} needs whole channels")
        check_divisible(f"{where}.width", cout, parts, f"the uneven split {ratio} needs whole channels")
        check_se_ratio(where, hidden, self.se_ratio)

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        cin, h, w = counter.channels, counter.height, counter.width
        hidden = self.hidden(cin)
        residual = stride == 1 and cin == cout
        with counter.holding(counter.elems if residual or self.mapping else 0):
            conv_bn_cost(counter, name + ".expand_small", self.small(hidden), act=self.act, cin=self.small(cin))
            counter.set_shape(cin, h, w)
            conv_bn_cost(counter, name + ".expand_large", hidden - self.small(hidden), act=self.act,
                         cin=cin - self.small(cin))
            counter.set_shape(hidden, h, w)
            conv_bn_cost(counter, name + ".depthwise", hidden, 3, stride, groups=hidden, act=self.act)
            if self.se_ratio:
                se_cost(counter, name + ".se", hidden, self.se_ratio)
            first, second = self.projection_slices(hidden, cout)
            dw_shape = (hidden, counter.height, counter.width)
            conv_bn_cost(counter, name + ".project_first", first[1], cin=first[0])
            counter.set_shape(*dw_shape)
            conv_bn_cost(counter, name + ".project_second", second[1], cin=second[0])
            counter.set_shape(cout, counter.height, counter.width)
        if self.mapping and not residual:
            out_shape = (counter.channels, counter.height, counter.width)
            with counter.holding(counter.elems):
                counter.set_shape(cin, h, w)
                if stride > 1:
                    counter.pool(stride, stride, ceil=True)
                conv_bn_cost(counter, name + ".mapping", cout, act=self.act)
            counter.set_shape(*out_shape)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.seesaw.module import SeesawBlock

        return SeesawBlock(cin, cout, stride, self)


__getattr__ = module_side(__name__)
