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

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from nasface.arch.blocks.base import (BlockSpec, SqueezeExcite, activation, activation_params, check_activation,
                                 check_divisible, check_positive, check_se_ratio, cost_ordered, larger_is_cheaper,
                                 se_cost, se_ratio_cost)
from nasface.arch.blocks.seesaw import channel_shuffle
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError


def split_channels(channels: int, parts: int) -> list[int]:
    """Equal groups, the first taking the remainder (as MixNet splits them)."""
    sizes = [channels // parts] * parts
    sizes[0] += channels - sum(sizes)
    return sizes


class MixedConv(nn.Module):
    """One convolution per channel group, outputs concatenated: group i has kernel ``kernels[i]``."""

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...], stride: int, depthwise: bool):
        super().__init__()
        self.in_sizes = split_channels(cin, len(kernels))
        self.convs = nn.ModuleList(
            nn.Conv2d(part_in, part_out, kernel, stride, kernel // 2, groups=part_out if depthwise else 1, bias=False)
            for part_in, part_out, kernel in zip(self.in_sizes, split_channels(cout, len(kernels)), kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.convs) == 1:
            return self.convs[0](x)
        return torch.cat([conv(part) for conv, part in zip(self.convs, torch.split(x, self.in_sizes, 1))], 1)

    def folded(self, bn: nn.BatchNorm2d) -> "MixedConv":
        """A copy with ``bn`` (which follows this layer; eval mode) folded into each group's convolution."""
        fused = copy.deepcopy(self)
        start = 0
        for index, conv in enumerate(fused.convs):
            part = slice(start, start + conv.out_channels)
            group_bn = nn.BatchNorm2d(conv.out_channels, eps=bn.eps).eval()
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(group_bn, name).data.copy_(getattr(bn, name)[part])
            fused.convs[index] = fuse_conv_bn_eval(conv, group_bn)
            start += conv.out_channels
        return fused


def mixed_conv_cost(counter: CostCounter, name: str, cout: int, kernels: tuple[int, ...], stride: int,
                    depthwise: bool) -> None:
    cin, h, w = counter.shape
    for index, (part_in, part_out, kernel) in enumerate(zip(split_channels(cin, len(kernels)),
                                                            split_channels(cout, len(kernels)), kernels)):
        counter.set_shape(cin, h, w)
        counter.conv(f"{name}.{index}", part_out, kernel, stride, groups=part_out if depthwise else 1, cin=part_in)
    counter.set_shape(cout, counter.height, counter.width)


def mixed_conv_bn(cin: int, cout: int, kernels: tuple[int, ...], stride: int, depthwise: bool,
                  act: str | None) -> nn.Sequential:
    layers: list[nn.Module] = [MixedConv(cin, cout, kernels, stride, depthwise), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(activation(act, cout))
    return nn.Sequential(*layers)


def mixed_conv_bn_cost(counter: CostCounter, name: str, cout: int, kernels: tuple[int, ...], stride: int,
                       depthwise: bool, act: str | None) -> None:
    mixed_conv_cost(counter, name, cout, kernels, stride, depthwise)
    counter.batchnorm(name + ".bn")
    if act is not None:
        counter.params(name + ".act", activation_params(act, cout))


class MixBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: "MixConvSpec"):
        super().__init__()
        hidden = spec.hidden(cin)
        self.expand = (mixed_conv_bn(cin, hidden, (1,) * spec.expand_groups, 1, False, spec.act)
                       if spec.expansion > 1 else nn.Identity())
        self.depthwise = mixed_conv_bn(hidden, hidden, spec.kernel_sizes(), stride, True, spec.act)
        self.se = SqueezeExcite(hidden, spec.se_ratio, spec.act) if spec.se_ratio else nn.Identity()
        self.project = mixed_conv_bn(hidden, cout, (1,) * spec.project_groups, 1, False, None)
        self.residual = stride == 1 and cin == cout
        self.shuffle_groups = cout // 2 if spec.shuffle else 0  # channel_shuffle's view: pairs, transposed
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # MixFaceNets' initialisation (He).  torch's default shrinks the signal at every block of
                # these deep stacks: an untrained MixFaceNet's embedding would be ~1e-9, too small for
                # its ONNX export to be checked against torch in float32.
                nn.init.kaiming_uniform_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.residual:
            out = x + out
        return channel_shuffle(out, self.shuffle_groups) if self.shuffle_groups else out


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
        return MixBlock(cin, cout, stride, self)
