"""Mixed convolutions and the MixConv block as torch modules; the family's knobs and cost rules are in
``__init__.py``."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from nasface.arch.blocks.base.module import SqueezeExcite, activation
from nasface.arch.blocks.mixconv import MixConvSpec, split_channels
from nasface.arch.blocks.seesaw.module import channel_shuffle


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


def mixed_conv_bn(cin: int, cout: int, kernels: tuple[int, ...], stride: int, depthwise: bool,
                  act: str | None) -> nn.Sequential:
    layers: list[nn.Module] = [MixedConv(cin, cout, kernels, stride, depthwise), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(activation(act, cout))
    return nn.Sequential(*layers)


class MixBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, spec: MixConvSpec):
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
