"""The inverted-residual bottleneck as a torch module; its knobs and cost rule are in ``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import SqueezeExcite, activation, conv_bn


class InvertedResidual(nn.Module):
    def __init__(self, expand: nn.Module, hidden: int, stride: int, act: str, se_ratio: int,
                 project: nn.Module, cout: int, residual: bool):
        super().__init__()
        self.expand = nn.Sequential(expand, nn.BatchNorm2d(hidden), activation(act, hidden))
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden, act=act)
        self.se = SqueezeExcite(hidden, se_ratio) if se_ratio else nn.Identity()
        self.project = nn.Sequential(project, nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return x + out if self.residual else out


def dense_pointwise(cin: int, cout: int) -> nn.Module:
    return nn.Conv2d(cin, cout, 1, bias=False)
