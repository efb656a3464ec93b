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

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import (BlockSpec, activation_cost, check_activation, check_divisible, check_se_ratio,
                                      conv_bn_cost, cost_ordered, module_side, se_cost, se_ratio_cost)
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn


def separable_unit_cost(counter: CostCounter, name: str, cout: int, stride: int, group_size: int,
                        factor: int, act: str, act_out: bool) -> None:
    cin = counter.channels
    conv_bn_cost(counter, name + ".group", cin * factor, 3, stride, groups=cin // group_size, act=act)
    conv_bn_cost(counter, name + ".pointwise", cout, 1, act=act if act_out else None)


def unit_kwargs(spec: "VarGSpec") -> dict:
    return {"group_size": spec.group_size, "factor": spec.factor, "act": spec.act}


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
        kw = unit_kwargs(self)
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
        activation_cost(counter, name + ".act", self.act, cout)

    def _down_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        kw = unit_kwargs(self)
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
        activation_cost(counter, name + ".merge_act", self.act, cout)
        with counter.holding(shortcut_elems):
            separable_unit_cost(counter, name + ".sep2", cout, 1, act_out=False, **kw)
        activation_cost(counter, name + ".act", self.act, cout)

    def head_cost(self, counter: CostCounter, name: str, stride: int) -> None:
        """VarGFaceNet's head block: a normal block keeping the width, with a separable shortcut."""
        self._normal_cost(counter, name, counter.channels, stride)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.varg.module import VarGDownBlock, VarGNormalBlock

        if stride == 1 and cin == cout:
            return VarGNormalBlock(cin, cout, stride, self)
        return VarGDownBlock(cin, cout, stride, self)

    def build_head(self, channels: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.varg.module import VarGNormalBlock

        return VarGNormalBlock(channels, channels, stride, self)


__getattr__ = module_side(__name__)
