"""The embedding blocks as torch modules; their kinds, checks and cost rules are in ``__init__.py``."""

from __future__ import annotations

import torch
from torch import nn

from nasface.arch.blocks.base.module import conv_bn
from nasface.arch.blocks.embeddings import EmbeddingSpec


class EmbeddingBlock(nn.Module):
    def __init__(self, features: nn.Module, fc: nn.Linear):
        super().__init__()
        self.features = features
        self.fc = fc
        self.bn = nn.BatchNorm1d(fc.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(self.features(x).flatten(1)))


def embedding_block(spec: EmbeddingSpec, channels: int, map_size: int) -> EmbeddingBlock:
    if spec.kind == "gdc":
        features = nn.Sequential(conv_bn(channels, spec.width, act=spec.act),
                                 conv_bn(spec.width, spec.width, map_size, groups=spec.width, padding=0))
        return EmbeddingBlock(features, nn.Linear(spec.width, spec.size, bias=False))
    if spec.kind == "varg":
        layers = [conv_bn(channels, spec.width, act=spec.act)] if channels != spec.width else []
        layers += [conv_bn(spec.width, spec.width, map_size, groups=spec.width // spec.group_size, padding=0),
                   conv_bn(spec.width, spec.width // 2, act=spec.act)]
        return EmbeddingBlock(nn.Sequential(*layers), nn.Linear(spec.width // 2, spec.size))
    if spec.width is not None:
        features: nn.Module = conv_bn(channels, spec.width, act=spec.act)
        channels = spec.width
    else:
        features = nn.BatchNorm2d(channels)
    if spec.kind == "gap":
        return EmbeddingBlock(nn.Sequential(features, nn.AdaptiveAvgPool2d(1)), nn.Linear(channels, spec.size))
    return EmbeddingBlock(features, nn.Linear(channels * map_size * map_size, spec.size))
