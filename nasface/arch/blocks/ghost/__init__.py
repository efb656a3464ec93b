"""GhostNet's Ghost bottleneck (Han et al. 2020), as GhostFaceNetV1 (Alansari et al. 2023) uses it.

A Ghost module makes ``c`` channels from half as many: a 1x1 convolution to c/2 (BN, act), and a
cheap 3x3 depthwise convolution of those (BN, act); the two halves are concatenated (GhostNet's
ratio s = 2, d = 3).  The bottleneck:

    Ghost module to the hidden width (act) -> [stride 2: depthwise ``kernel`` x ``kernel`` /2, BN]
    -> [SE] -> Ghost module to the output width (linear)

plus a shortcut: the identity when the block keeps its shape, else depthwise ``kernel`` (with the
block's stride, BN) -> 1x1 conv (BN).  GhostFaceNetV1 replaces every ReLU by PReLU, the SE's
included (its "modified attention"); the SE's reduced width is hidden / ``se_ratio`` rounded to a
multiple of 4 and its gate is a hard sigmoid, as in GhostNet.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import (BlockSpec, check_activation, check_divisible, check_expansion, conv_bn_cost,
                                      cost_ordered, module_side, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn

KERNELS = (3, 5)
CHEAP_KERNEL = 3  # GhostNet's d: the depthwise kernel of the cheap half


def make_divisible(value: float, divisor: int = 4) -> int:
    """GhostNet's channel rounding: to the nearest multiple of ``divisor``, never more than 10 % down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def ghost_module_cost(counter: CostCounter, name: str, cout: int, act: str | None) -> None:
    conv_bn_cost(counter, name + ".primary", cout // 2, act=act)
    with counter.holding(counter.elems):  # the primary half waits for the cheap half, to be concatenated
        conv_bn_cost(counter, name + ".cheap", cout // 2, CHEAP_KERNEL, groups=cout // 2, act=act)
    counter.set_shape(cout, counter.height, counter.width)


@dataclass(frozen=True)
class GhostSpec(BlockSpec):
    family = "ghost"
    expansion: float = 3.0
    kernel: int = 3
    se_ratio: int = cost_ordered(0, se_ratio_cost)
    act: str = "prelu"

    def hidden(self, cin: int) -> int:
        return int(round(cin * self.expansion))

    def se_width(self, hidden: int) -> int:
        return make_divisible(hidden / self.se_ratio)

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        if self.kernel not in KERNELS:
            raise NasfaceError(f"{where}.kernel: the depthwise kernel is 3 or 5 (GhostNet), got {self.kernel}")
        check_expansion(where, self.expansion)
        if self.se_ratio < 0:
            raise NasfaceError(f"{where}.se_ratio: must be 0 (no SE) or a positive reduction, got {self.se_ratio}")
        hidden = self.hidden(cin)
        if hidden < 2:
            raise NasfaceError(f"{where}.expansion: {self.expansion} x {cin} channels leaves fewer than 2 hidden "
                               f"channels for a Ghost module")
        check_divisible(f"{where}.expansion (hidden width)", hidden, 2,
                        "a Ghost module makes half its channels from the other half")
        check_divisible(f"{where}.width", cout, 2, "a Ghost module makes half its channels from the other half")

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        cin, h, w = counter.shape
        hidden = self.hidden(cin)
        with counter.holding(counter.elems):  # the input waits for the shortcut (identity or not)
            ghost_module_cost(counter, name + ".expand", hidden, self.act)
            if stride > 1:
                conv_bn_cost(counter, name + ".depthwise", hidden, self.kernel, stride, groups=hidden)
            if self.se_ratio:
                se_cost(counter, name + ".se", hidden, self.se_ratio, self.act, reduced=self.se_width(hidden))
            ghost_module_cost(counter, name + ".project", cout, None)
        if not (stride == 1 and cin == cout):
            out_shape = counter.shape
            with counter.holding(counter.elems):
                counter.set_shape(cin, h, w)
                conv_bn_cost(counter, name + ".shortcut.depthwise", cin, self.kernel, stride, groups=cin)
                conv_bn_cost(counter, name + ".shortcut.pointwise", cout)
            counter.set_shape(*out_shape)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.ghost.module import GhostBottleneck

        return GhostBottleneck(cin, cout, stride, self)


__getattr__ = module_side(__name__)
