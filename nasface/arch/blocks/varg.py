"""VarGFaceNet's variable group convolution blocks (VarGFaceNet Fig. 1, Table 1).

A variable group convolution keeps the channels per group constant (S, 8 in the paper), so the
number of groups varies with the width.  Every VarG "separable" unit is: 3x3 group conv with S
input channels per group, ``factor`` x the channels out (BN, PReLU) -> 1x1 pointwise (BN,
optional PReLU).

- Normal block (Fig. 1a): two separable units, SE on the output, residual add, PReLU.  The
  shortcut is the identity, or a separable unit without activation when the shape changes
  (VarGFaceNet's head uses this form, with factor 1 and stride 2).
- Down-sampling block (Fig. 1b): two parallel strided separable units summed (PReLU), a third
  separable unit, plus a strided separable shortcut; PReLU.  No SE, as in the reference symbol.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasface.arch.blocks.base import (BlockSpec, SqueezeExcite, activation, activation_params,
                                 check_activation, check_divisible, check_se_ratio, conv_bn,
                                 conv_bn_cost, cost_ordered, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError


class SeparableUnit(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int, group_size: int, factor: int, act: str,
                 act_out: bool):
        super().__init__(
            conv_bn(cin, cin * factor, 3, stride, groups=cin // group_size, act=act),
            conv_bn(cin * factor, cout, 1, act=act if act_out else None),
        )


def separable_unit_cost(counter: CostCounter, name: str, cout: int, stride: int, group_size: int,
                        factor: int, act: str, act_out: bool) -> None:
    cin = counter.channels
    conv_bn_cost(counter, name + ".group", cin * factor, 3, stride, groups=cin // group_size, act=act)
    conv_bn_cost(counter, name + ".pointwise", cout, 1, act=act if act_out else None)


def _unit_kwargs(spec: "VarGSpec") -> dict:
    return {"group_size": spec.group_size, "factor": spec.factor, "act": spec.act}


class VarGNormalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: "VarGSpec"):
        super().__init__()
        kw = _unit_kwargs(spec)
        identity = stride == 1 and cin == cout
        self.shortcut = nn.Identity() if identity else SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.sep1 = SeparableUnit(cin, cout, stride, act_out=True, **kw)
        self.sep2 = SeparableUnit(cout, cout, 1, act_out=False, **kw)
        self.se = SqueezeExcite(cout, spec.se_ratio) if spec.se_ratio else nn.Identity()
        self.act = activation(spec.act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.sep2(self.sep1(x))) + self.shortcut(x))


class VarGDownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: "VarGSpec"):
        super().__init__()
        kw = _unit_kwargs(spec)
        self.shortcut = SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.branch1 = SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.branch2 = SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.merge_act = activation(spec.act, cout)
        self.sep2 = SeparableUnit(cout, cout, 1, act_out=False, **kw)
        self.act = activation(spec.act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        merged = self.merge_act(self.branch1(x) + self.branch2(x))
        return self.act(self.sep2(merged) + self.shortcut(x))


@dataclass(frozen=True)
class VarGSpec(BlockSpec):
    family = "varg"
    group_size: int = 8
    factor: int = 2
    se_ratio: int = cost_ordered(4, se_ratio_cost)
    act: str = "prelu"

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        if self.group_size <= 0:
            raise NasfaceError(f"{where}.group_size: must be a positive integer, got {self.group_size}")
        if self.factor <= 0:
            raise NasfaceError(f"{where}.factor: must be a positive integer, got {self.factor}")
        why = f"variable group convolution holds group_size={self.group_size} channels per group"
        check_divisible(f"{where} input", cin, self.group_size, why)
        check_divisible(f"{where}.width", cout, self.group_size, why)
        check_se_ratio(where, cout, self.se_ratio)

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        if stride == 1 and counter.channels == cout:
            self._normal_cost(counter, name, cout, stride)
        else:
            self._down_cost(counter, name, cout, stride)

    def _normal_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        kw = _unit_kwargs(self)
        block_input = (counter.channels, counter.height, counter.width)
        if stride == 1 and counter.channels == cout:
            held = counter.elems
        else:
            separable_unit_cost(counter, name + ".shortcut", cout, stride, act_out=False, **kw)
            held = counter.elems
            counter.set_shape(*block_input)
        with counter.holding(held):
            separable_unit_cost(counter, name + ".sep1", cout, stride, act_out=True, **kw)
            separable_unit_cost(counter, name + ".sep2", cout, 1, act_out=False, **kw)
            if self.se_ratio:
                se_cost(counter, name + ".se", cout, self.se_ratio)
        counter.params(name + ".act", activation_params(self.act, cout))

    def _down_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        kw = _unit_kwargs(self)
        block_input = (counter.channels, counter.height, counter.width)
        input_elems = counter.elems
        separable_unit_cost(counter, name + ".shortcut", cout, stride, act_out=False, **kw)
        shortcut_elems = counter.elems
        with counter.holding(shortcut_elems + input_elems):
            counter.set_shape(*block_input)
            separable_unit_cost(counter, name + ".branch1", cout, stride, act_out=False, **kw)
        with counter.holding(2 * shortcut_elems):
            counter.set_shape(*block_input)
            separable_unit_cost(counter, name + ".branch2", cout, stride, act_out=False, **kw)
        counter.params(name + ".merge_act", activation_params(self.act, cout))
        with counter.holding(shortcut_elems):
            separable_unit_cost(counter, name + ".sep2", cout, 1, act_out=False, **kw)
        counter.params(name + ".act", activation_params(self.act, cout))

    def head_cost(self, counter: CostCounter, name: str, stride: int) -> None:
        """VarGFaceNet's head block: a normal block keeping the width, with a separable shortcut."""
        self._normal_cost(counter, name, counter.channels, stride)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        if stride == 1 and cin == cout:
            return VarGNormalBlock(cin, cout, stride, self)
        return VarGDownBlock(cin, cout, stride, self)

    def build_head(self, channels: int, stride: int) -> nn.Module:
        return VarGNormalBlock(channels, channels, stride, self)
