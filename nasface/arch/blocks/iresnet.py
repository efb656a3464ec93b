"""IR-ResNet basic block (insightface's iresnet, ArcFace's "improved residual" unit).

BN -> 3x3 conv -> BN -> PReLU -> 3x3 conv with the block's stride -> BN (-> optional SE), plus
the shortcut: identity, or 1x1 strided conv + BN when the shape changes.  Enough to express
insightface's iresnet18/34/50/100 teachers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasface.arch.blocks.base import (BlockSpec, SqueezeExcite, activation, check_activation, check_se_ratio, conv_bn,
                                 conv_bn_cost, cost_ordered, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter


class IRBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: "IRSpec"):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
            activation(spec.act, cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            SqueezeExcite(cout, spec.se_ratio) if spec.se_ratio else nn.Identity(),
        )
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


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
        return IRBlock(cin, cout, stride, self)
