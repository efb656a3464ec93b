"""VarGFaceNet's blocks as torch modules; the family's knobs and cost rules are in ``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import SqueezeExcite, activation, conv_bn
from nasface.arch.blocks.varg import VarGSpec, unit_kwargs


class SeparableUnit(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int, group_size: int, factor: int, act: str,
                 act_out: bool):
        super().__init__(
            conv_bn(cin, cin * factor, 3, stride, groups=cin // group_size, act=act),
            conv_bn(cin * factor, cout, 1, act=act if act_out else None),
        )


class VarGNormalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: VarGSpec):
        super().__init__()
        kw = unit_kwargs(spec)
        identity = stride == 1 and cin == cout
        self.shortcut = nn.Identity() if identity else SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.sep1 = SeparableUnit(cin, cout, stride, act_out=True, **kw)
        self.sep2 = SeparableUnit(cout, cout, 1, act_out=False, **kw)
        self.se = SqueezeExcite(cout, spec.se_ratio) if spec.se_ratio else nn.Identity()
        self.act = activation(spec.act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.sep2(self.sep1(x))) + self.shortcut(x))


class VarGDownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: VarGSpec):
        super().__init__()
        kw = unit_kwargs(spec)
        self.shortcut = SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.branch1 = SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.branch2 = SeparableUnit(cin, cout, stride, act_out=False, **kw)
        self.merge_act = activation(spec.act, cout)
        self.sep2 = SeparableUnit(cout, cout, 1, act_out=False, **kw)
        self.act = activation(spec.act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        merged = self.merge_act(self.branch1(x) + self.branch2(x))
        return self.act(self.sep2(merged) + self.shortcut(x))
