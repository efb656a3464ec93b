"""ShuffleNetV2's unit as a torch module; the family's knobs and cost rule are in ``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import conv_bn
from nasface.arch.blocks.seesaw.module import channel_shuffle
from nasface.arch.blocks.shufflev2 import ShuffleV2Spec


def _branch(cin: int, half: int, kernel: int, stride: int, act: str) -> nn.Sequential:
    return nn.Sequential(conv_bn(cin, half, act=act), conv_bn(half, half, kernel, stride, groups=half),
                         conv_bn(half, half, act=act))


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: ShuffleV2Spec):
        super().__init__()
        half = cout // 2
        self.splits = stride == 1 and cin == cout
        self.passthrough = None if self.splits else nn.Sequential(
            conv_bn(cin, cin, spec.kernel, stride, groups=cin), conv_bn(cin, half, act=spec.act))
        self.branch = _branch(half if self.splits else cin, half, spec.kernel, stride, spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.splits:
            kept, processed = x.chunk(2, 1)
            out = torch.cat([kept, self.branch(processed)], 1)
        else:
            out = torch.cat([self.passthrough(x), self.branch(x)], 1)
        return channel_shuffle(out, 2)
