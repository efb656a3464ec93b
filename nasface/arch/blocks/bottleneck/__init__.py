"""Inverted-residual bottleneck of MobileFaceNet and MobiFace (MobileNetV2's block).

1x1 expansion (BN, act) -> 3x3 depthwise with the block's stride (BN, act) -> optional SE on
the expanded channels -> linear 1x1 projection (BN).  The shortcut is added when the block keeps
its shape (stride 1 and cin == cout), as both papers' "RBlock".
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass

from nasface.arch.blocks.base import (BlockSpec, activation_cost, check_activation, check_expansion, check_se_ratio,
                                      conv_bn_cost, cost_ordered, module_side, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class BottleneckSpec(BlockSpec):
    family = "bottleneck"
    expansion: float = 2.0
    se_ratio: int = cost_ordered(0, se_ratio_cost)
    act: str = "prelu"

    def hidden(self, cin: int) -> int:
        return int(round(cin * self.expansion))

    # The pointwise convolutions are the part the FLGC family replaces.
    def pointwise(self, cin: int, cout: int) -> nn.Module:
        from nasface.arch.blocks.bottleneck.module import dense_pointwise

        return dense_pointwise(cin, cout)

    def pointwise_cost(self, counter: CostCounter, name: str, cout: int) -> None:
        counter.conv(name, cout)

    def check_pointwise(self, where: str, cin: int, cout: int) -> None:
        """Nothing to check for a dense pointwise convolution."""

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        check_expansion(where, self.expansion)
        hidden = self.hidden(cin)
        if hidden < 1:
            raise NasfaceError(f"{where}.expansion: {self.expansion} x {cin} channels leaves no hidden channel")
        check_se_ratio(where, hidden, self.se_ratio)
        self.check_pointwise(where, cin, hidden)
        self.check_pointwise(where, hidden, cout)

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        self.bottleneck_cost(counter, name, cout, stride, self.pointwise_cost)

    def bottleneck_cost(self, counter: CostCounter, name: str, cout: int, stride: int,
                        pointwise_cost: Callable[[CostCounter, str, int], None]) -> None:
        """The block's cost, ``pointwise_cost`` counting its expansion and then its projection."""
        cin = counter.channels
        hidden = self.hidden(cin)
        residual = stride == 1 and cin == cout
        with counter.holding(counter.elems if residual else 0):
            pointwise_cost(counter, name + ".expand", hidden)
            counter.batchnorm(name + ".expand.bn")
            activation_cost(counter, name + ".expand.act", self.act, hidden)
            conv_bn_cost(counter, name + ".depthwise", hidden, 3, stride, groups=hidden, act=self.act)
            if self.se_ratio:
                se_cost(counter, name + ".se", hidden, self.se_ratio)
            pointwise_cost(counter, name + ".project", cout)
            counter.batchnorm(name + ".project.bn")

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.bottleneck.module import InvertedResidual

        hidden = self.hidden(cin)
        return InvertedResidual(self.pointwise(cin, hidden), hidden, stride, self.act, self.se_ratio,
                                self.pointwise(hidden, cout), cout, residual=stride == 1 and cin == cout)


__getattr__ = module_side(__name__)
