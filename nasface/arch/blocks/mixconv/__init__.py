"""MixFaceNets' MixConv block (Boutros et al. 2021, after MixNet's "MixConv" of Tan and Le 2019).

An inverted bottleneck whose convolutions are *mixed*: the channels are split into equal groups
(the first takes the remainder) and each group has its own convolution:

- the depthwise convolution mixes kernel sizes 3, 5, 7, ... over ``kernels`` groups;
- the two pointwise convolutions are split into ``expand_groups`` / ``project_groups`` groups
  (MixNet's "kernel counts" of its 1x1 layers), each a separate 1x1 conv;
- SE on the expanded channels uses the block's activation (Swish or PReLU);
- ``shuffle`` ends the block with a two-group channel shuffle (even channels, then odd), after the
  residual: ShuffleMixFaceNets.  It moves channels across the pointwise groups at no cost.

``expansion`` 1 has no expansion convolution (MixNet's first block).  Linear projection, residual
when the block keeps its shape.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import (BlockSpec, activation_cost, check_activation, check_divisible, check_positive,
                                      check_se_ratio, cost_ordered, larger_is_cheaper, module_side, se_cost,
                                      se_ratio_cost)
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn


def split_channels(channels: int, parts: int) -> list[int]:
    """Equal groups, the first taking the remainder (as MixNet splits them)."""
    sizes = [channels // parts] * parts
    sizes[0] += channels - sum(sizes)
    return sizes


def mixed_conv_cost(counter: CostCounter, name: str, cout: int, kernels: tuple[int, ...], stride: int,
                    depthwise: bool) -> None:
    cin, h, w = counter.shape
    for index, (part_in, part_out, kernel) in enumerate(zip(split_channels(cin, len(kernels)),
                                                            split_channels(cout, len(kernels)), kernels)):
        counter.set_shape(cin, h, w)
        counter.conv(f"{name}.{index}", part_out, kernel, stride, groups=part_out if depthwise else 1, cin=part_in)
    counter.set_shape(cout, counter.height, counter.width)


def mixed_conv_bn_cost(counter: CostCounter, name: str, cout: int, kernels: tuple[int, ...], stride: int,
                       depthwise: bool, act: str | None) -> None:
    mixed_conv_cost(counter, name, cout, kernels, stride, depthwise)
    counter.batchnorm(name + ".bn")
    if act is not None:
        activation_cost(counter, name + ".act", act, cout)


@dataclass(frozen=True)
class MixConvSpec(BlockSpec):
    family = "mixconv"
    expansion: int = 6
    kernels: int = 1
    expand_groups: int = cost_ordered(1, larger_is_cheaper)
    project_groups: int = cost_ordered(1, larger_is_cheaper)
    se_ratio: int = cost_ordered(0, se_ratio_cost)
    act: str = "swish"
    shuffle: bool = False

    def hidden(self, cin: int) -> int:
        return cin * self.expansion

    def kernel_sizes(self) -> tuple[int, ...]:
        return tuple(3 + 2 * index for index in range(self.kernels))

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        for knob in ("expansion", "kernels", "expand_groups", "project_groups"):
            check_positive(f"{where}.{knob}", getattr(self, knob))
        hidden = self.hidden(cin)
        for knob, channels, parts in (("expand_groups", cin, self.expand_groups if self.expansion > 1 else 1),
                                      ("kernels", hidden, self.kernels),
                                      ("project_groups", min(hidden, cout), self.project_groups)):
            if channels < parts:
                raise NasfaceError(f"{where}.{knob}: {parts} channel groups need at least {parts} channels, "
                                   f"the block has {channels}")
        if self.shuffle:
            check_divisible(f"{where}.width", cout, 2, "the two-group channel shuffle needs whole pairs")
        check_se_ratio(where, hidden, self.se_ratio)

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        hidden = self.hidden(counter.channels)
        residual = stride == 1 and counter.channels == cout
        with counter.holding(counter.elems if residual else 0):
            if self.expansion > 1:
                mixed_conv_bn_cost(counter, name + ".expand", hidden, (1,) * self.expand_groups, 1, False, self.act)
            mixed_conv_bn_cost(counter, name + ".depthwise", hidden, self.kernel_sizes(), stride, True, self.act)
            if self.se_ratio:
                se_cost(counter, name + ".se", hidden, self.se_ratio, self.act)
            mixed_conv_bn_cost(counter, name + ".project", cout, (1,) * self.project_groups, 1, False, None)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.mixconv.module import MixBlock

        return MixBlock(cin, cout, stride, self)


__getattr__ = module_side(__name__)
