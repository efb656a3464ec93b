"""The Ghost module and bottleneck as torch modules; the family's knobs and cost rule are in ``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import SqueezeExcite, conv_bn
from nasface.arch.blocks.ghost import CHEAP_KERNEL, GhostSpec


class GhostModule(nn.Module):
    def __init__(self, cin: int, cout: int, act: str | None):
        super().__init__()
        self.primary = conv_bn(cin, cout // 2, act=act)
        self.cheap = conv_bn(cout // 2, cout // 2, CHEAP_KERNEL, groups=cout // 2, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary(x)
        return torch.cat([primary, self.cheap(primary)], 1)


class GhostBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: GhostSpec):
        super().__init__()
        hidden = spec.hidden(cin)
        self.expand = GhostModule(cin, hidden, spec.act)
        self.depthwise = (conv_bn(hidden, hidden, spec.kernel, stride, groups=hidden) if stride > 1
                          else nn.Identity())
        self.se = (SqueezeExcite(hidden, spec.se_ratio, spec.act, reduced=spec.se_width(hidden), hard_gate=True)
                   if spec.se_ratio else nn.Identity())
        self.project = GhostModule(hidden, cout, None)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(conv_bn(cin, cin, spec.kernel, stride, groups=cin), conv_bn(cin, cout)))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")  # GhostFaceNets' initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.project(self.se(self.depthwise(self.expand(x))))
