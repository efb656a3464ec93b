"""The IR-ResNet basic block as a torch module; its knobs and cost rule are in ``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import SqueezeExcite, activation, conv_bn
from nasface.arch.blocks.iresnet import IRSpec


class IRBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: IRSpec):
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
