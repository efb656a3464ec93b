"""The Seesaw block and the channel shuffle as torch modules; the family's knobs and cost rule are in
``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import SqueezeExcite, conv_bn
from nasface.arch.blocks.seesaw import SeesawSpec


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SeesawBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: SeesawSpec):
        super().__init__()
        hidden = spec.hidden(cin)
        self.in_small = spec.small(cin)
        self.shuffle = spec.variant == "shuffle"
        self.expand_small = conv_bn(self.in_small, spec.small(hidden), act=spec.act)
        self.expand_large = conv_bn(cin - self.in_small, hidden - spec.small(hidden), act=spec.act)
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden, act=spec.act)
        self.se = SqueezeExcite(hidden, spec.se_ratio) if spec.se_ratio else nn.Identity()
        # Projection: (input slice width, output width) of the first and second slice.
        first, second = spec.projection_slices(hidden, cout)
        self.first_width = first[0]
        self.project_first = conv_bn(first[0], first[1])
        self.project_second = conv_bn(second[0], second[1])
        self.residual = stride == 1 and cin == cout
        self.mapping = None
        if spec.mapping and not self.residual:
            # ceil mode: on an odd map the pool must give the depthwise conv's ceil(h / 2) size
            pool = nn.MaxPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
            self.mapping = nn.Sequential(pool, conv_bn(cin, cout, act=spec.act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([self.expand_small(x[:, :self.in_small]), self.expand_large(x[:, self.in_small:])], 1)
        if self.shuffle:
            out = channel_shuffle(out, 2)
        out = self.se(self.depthwise(out))
        out = torch.cat([self.project_first(out[:, :self.first_width]),
                         self.project_second(out[:, self.first_width:])], 1)
        if self.residual:
            return x + out
        if self.mapping is not None:
            return self.mapping(x) + out
        return out
