"""The network a spec describes, as a torch module (``FaceEmbeddingNet``), and a trained one as a device
runs it (``deploy``) and as training shaped it (``learnt_structure``).  Built through
``nasface.arch.model.build_model``, which counts the same spec without torch.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from nasface.arch.blocks.base import BlockSpec
from nasface.arch.blocks.base.module import conv_bn
from nasface.arch.spec import ArchSpec, validate


class FaceEmbeddingNet(nn.Module):
    """Maps N x 3 x S x S images (normalised to about [-1, 1]) to N x embedding."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        final_size = validate(spec)
        self.spec = spec
        self.stem = conv_bn(3, spec.stem.width, 3, spec.stem.stride, act=spec.stem.act)
        self.head = spec.head.build(spec.stem.width)
        self.stages = nn.Sequential(*[
            nn.Sequential(*[block.build(cin, cout, stride)
                            for name, i, block, cin, cout, stride in spec.blocks() if i == index])
            for index in range(len(spec.stages))
        ])
        self.embedding = spec.embedding.build(spec.final_channels, final_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.stages(self.head(self.stem(x))))


def _blocks_in(model: nn.Module) -> list[tuple[str, BlockSpec, nn.Sequential, int]]:
    """(name, spec, its stage, its index there) of every block of the network in ``model`` (which may
    wrap it, as the proxy's ``ResizedInput`` does)."""
    network = next(module for module in model.modules() if isinstance(module, FaceEmbeddingNet))
    places = [(stage, index) for stage in network.stages for index in range(len(stage))]
    return [(name, block, stage, index)
            for (name, _, block, *_), (stage, index) in zip(network.spec.blocks(), places)]


def deploy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every block in the form a device runs (FLGC: real group convolutions)."""
    deployed = copy.deepcopy(model)
    for _, block, stage, index in _blocks_in(deployed):
        stage[index] = block.deployed(stage[index])
    return deployed


def learnt_structure(model: nn.Module) -> dict[str, list]:
    """What training decided about each block of the network in ``model`` that its deployed cost depends
    on, such as FLGC's learnt groups, by block name (``stage2.block1``)."""
    found = {}
    for name, block, stage, index in _blocks_in(model):
        learnt = block.learnt(stage[index])
        if learnt is not None:
            found[name] = learnt
    return found
