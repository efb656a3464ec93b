"""IR-ResNet basic block (insightface's iresnet, ArcFace's "improved residual" unit).

BN -> 3x3 conv -> BN -> PReLU -> 3x3 conv with the block's stride -> BN (-> optional SE), plus
the shortcut: identity, or 1x1 strided conv + BN when the shape changes.  Enough to express
insightface's iresnet18/34/50/100 teachers.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import (BlockSpec, check_activation, check_se_ratio, conv_bn_cost, cost_ordered,
                                      module_side, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter

if typing.TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class IRSpec(BlockSpec):
    family = "ir"
    se_ratio: int = cost_ordered(0, se_ratio_cost)
    act: str = "prelu"

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        check_se_ratio(where, cout, self.se_ratio)

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        cin, h, w = counter.channels, counter.height, counter.width
        with counter.holding(counter.elems):
            counter.batchnorm(name + ".bn_in")
            conv_bn_cost(counter, name + ".conv1", cout, 3, 1, act=self.act)
            conv_bn_cost(counter, name + ".conv2", cout, 3, stride)
            if self.se_ratio:
                se_cost(counter, name + ".se", cout, self.se_ratio)
        if not (stride == 1 and cin == cout):
            out_shape = (counter.channels, counter.height, counter.width)
            with counter.holding(counter.elems):
                counter.set_shape(cin, h, w)
                conv_bn_cost(counter, name + ".shortcut", cout, 1, stride, padding=0)
            counter.set_shape(*out_shape)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.iresnet.module import IRBlock

        return IRBlock(cin, cout, stride, self)


__getattr__ = module_side(__name__)
