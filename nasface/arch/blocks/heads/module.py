"""The head blocks as torch modules; their kinds, checks and cost rules are in ``__init__.py``."""

from __future__ import annotations

from torch import nn

from nasface.arch.blocks.base.module import conv_bn
from nasface.arch.blocks.heads import HeadSpec


def head_block(spec: HeadSpec, channels: int) -> nn.Module:
    if spec.kind == "dw":
        return conv_bn(channels, channels, 3, spec.stride, groups=channels, act=spec.act)
    if spec.kind == "varg":
        return spec._varg().build_head(channels, spec.stride)
    return nn.Identity()
