"""The two readers of a spec: ``build_model`` (a torch module) and ``count`` (its exact cost).

Both walk the spec in the same order, stem -> head -> stages -> embedding, and delegate each
block to its family's ``build`` / ``add_cost``, which live side by side in ``nasface/arch/blocks/``.
A trained network is deployed (``deploy``) and counted as deployed (``learnt_structure``,
``deployed_cost``) through its families' hooks as well.
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from nasface.arch.blocks.base import BlockSpec, conv_bn, conv_bn_cost
from nasface.arch.cost import CONVENTIONS, CostCounter, CostReport, report_from_counter
from nasface.core.errors import NasfaceError
from nasface.arch.spec import ArchSpec, load_spec, stage_blocks, validate


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


def build_model(spec: ArchSpec | str) -> FaceEmbeddingNet:
    return FaceEmbeddingNet(load_spec(spec))


@functools.lru_cache(maxsize=4096)
def _block_cost(block: BlockSpec, shape: tuple[int, int, int], cout: int, stride: int) -> CostCounter:
    # A search counts the same block on the same input many times over: count it once.
    part = CostCounter(*shape)
    block.add_cost(part, "", cout, stride)
    return part


def cost_counter(spec: ArchSpec, record_layers: bool = False, learnt: dict | None = None) -> CostCounter:
    """Walk ``spec`` through a ``CostCounter`` without building anything (``spec`` is validated).

    ``learnt`` (``learnt_structure`` of a trained network) counts the blocks it names as deployed.
    """
    learnt = learnt or {}
    counter = CostCounter(3, spec.input_size, spec.input_size, record_layers=record_layers)
    with counter.in_section("stem"):
        conv_bn_cost(counter, "stem", spec.stem.width, 3, spec.stem.stride, act=spec.stem.act)
    with counter.in_section("head"):
        spec.head.add_cost(counter)
    if record_layers or learnt:  # every block by name: its layers, or its own learnt structure
        for name, index, block, cin, cout, stride in spec.blocks():
            with counter.in_section(f"stage{index + 1}"):
                if name in learnt:
                    block.deployed_cost(counter, name, cout, stride, learnt[name])
                elif record_layers:
                    block.add_cost(counter, name, cout, stride)
                else:
                    counter.absorb(_block_cost(block, counter.shape, cout, stride))
    else:  # a stage's repeated blocks are one block counted once, times its repeats
        for index, block, cin, cout, stride, times in stage_blocks(spec):
            with counter.in_section(f"stage{index + 1}"):
                counter.absorb(_block_cost(block, counter.shape, cout, stride), times)
    spec.embedding.add_cost(counter)
    return counter


def count(spec: ArchSpec | str, convention: str = "lfr", learnt: dict | None = None) -> dict:
    """The figures of ``nasface count --json``: flops (in ``convention``), macs, params, bytes.

    With ``learnt`` (``learnt_structure(trained_model)``) the blocks it names count as deployed.
    """
    return count_report(spec, convention, learnt).to_dict()


def count_report(spec: ArchSpec | str, convention: str = "lfr", learnt: dict | None = None) -> CostReport:
    if convention not in CONVENTIONS:
        raise NasfaceError(f"unknown FLOPs convention {convention!r} (choose from {', '.join(CONVENTIONS)})")
    return report_from_counter(cost_counter(load_spec(spec), learnt=learnt), convention)


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


def deployed_cost(spec: ArchSpec, metrics: dict, convention: str) -> dict:
    """The costs of a scored candidate as it deploys, ``flops`` in ``convention``: counted from what its
    training decided (``metrics["learnt_structure"]``, recorded by ``nasface.training.proxy.score``)."""
    figures = count(spec, convention, metrics.get("learnt_structure"))
    figures.pop("stages")
    return figures
