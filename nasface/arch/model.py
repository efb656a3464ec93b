"""The two readers of a spec: ``build_model`` (a torch module) and ``count`` (its exact cost).

Both walk the spec in the same order, stem -> head -> stages -> embedding, and delegate each
block to its family's ``build`` / ``add_cost``, which live side by side in ``nasface/arch/blocks/``.
A trained network is deployed (``deploy``) and counted as deployed (``learnt_structure``,
``deployed_cost``) through its families' hooks as well.

Counting needs no torch, and this module imports none: the network itself (``FaceEmbeddingNet``,
``deploy``, ``learnt_structure``) is in ``network.py``, imported when a network is built or named,
as each block family keeps its module apart from its spec (``nasface.arch.blocks``).
"""

from __future__ import annotations

import functools
import importlib
import typing

from nasface.arch.blocks.base import BlockSpec
from nasface.arch.cost import CONVENTIONS, CostCounter, CostReport, report_from_counter
from nasface.core.errors import NasfaceError
from nasface.arch.spec import ArchSpec, load_spec, stage_blocks

if typing.TYPE_CHECKING:
    from nasface.arch.network import FaceEmbeddingNet

# The names of the torch side, looked up in ``network.py`` on first use.
NETWORK_NAMES = ("FaceEmbeddingNet", "deploy", "learnt_structure")


def __getattr__(name: str):
    if name not in NETWORK_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("nasface.arch.network"), name)


def build_model(spec: ArchSpec | str) -> FaceEmbeddingNet:
    from nasface.arch.network import FaceEmbeddingNet

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
        spec.stem.add_cost(counter)
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


def deployed_cost(spec: ArchSpec, metrics: dict, convention: str) -> dict:
    """The costs of a scored candidate as it deploys, ``flops`` in ``convention``: counted from what its
    training decided (``metrics["learnt_structure"]``, recorded by ``nasface.training.proxy.score``)."""
    figures = count(spec, convention, metrics.get("learnt_structure"))
    figures.pop("stages")
    return figures
