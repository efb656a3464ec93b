"""What the block families share: the ``BlockSpec`` contract, the checks, the cost order of knobs and the
cost rules of the shared layers, whose torch modules are in ``module.py`` beside this file (why every
part of ``nasface.arch.blocks`` is split so: its ``__init__.py``).

A block family is a frozen dataclass of its knobs (a ``BlockSpec``) that knows three things
about one block ``cin -> cout`` with a given stride: what makes it invalid (``check``), what
it costs (``add_cost``, calling ``CostCounter`` in the order the module creates layers) and
the module itself (``build``).  A family whose trained block runs in another form on a device
(FLGC's learnt groups as real group convolutions) also gives that form (``deployed``), what
training decided that its cost depends on (``learnt``) and what it costs given that
(``deployed_cost``).  A knob whose cheapest choice is not the smallest
number (a stride, a group count) declares its cost order (``cost_ordered``), from which a search
space finds its cheapest architecture.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:  # the annotations only: the module side imports torch
    from torch import nn

ACTIVATIONS = ("prelu", "relu", "swish")


def module_side(package: str) -> Callable[[str], object]:
    """The ``__getattr__`` of a block package ``package``: a name its spec side lacks is looked up in its
    ``module.py``, imported (with torch) on the first such lookup only."""
    def lookup(name: str):
        if name.startswith("__"):  # the import system's and tools' probes (__path__, __wrapped__) stay cheap
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            return getattr(importlib.import_module(f"{package}.module"), name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r} (nor has its module.py)") from None

    return lookup


def activation_cost(counter: CostCounter, name: str, kind: str, channels: int, positions: int | None = None) -> None:
    """An activation of ``kind`` on ``channels`` channels at ``positions`` places (by default the current
    map's): only a PReLU has weights, and elements to count."""
    if kind == "prelu":
        counter.prelu(name, channels, positions)


def check_activation(where: str, kind: str) -> None:
    if kind not in ACTIVATIONS:
        raise NasfaceError(f"{where}: unknown activation {kind!r} (choose from {', '.join(ACTIVATIONS)})")


def check_positive(where: str, value: int) -> None:
    if value <= 0:
        raise NasfaceError(f"{where}: must be a positive integer, got {value}")


def check_expansion(where: str, expansion: float) -> None:
    """A block's expansion ratio: a finite positive number (YAML's .inf and .nan are numbers too)."""
    if not 0 < expansion < 1e6:
        raise NasfaceError(f"{where}.expansion: must be a positive number below 1e6 (such as 2 or 4), got {expansion}")


def check_divisible(where: str, channels: int, by: int, why: str) -> None:
    if by <= 0 or channels % by:
        raise NasfaceError(f"{where}: {channels} channels are not divisible by {by} ({why})")


def check_unused(part, where: str, what: str, users: str) -> None:
    """Refuse a knob ``part`` (a head or embedding) does not read, unless it keeps its default.

    ``part.unused_knobs()`` names them; a default value passes because every spec written before such
    knobs were refused holds it (older files and stored trials must still load, and hash the same).
    """
    for field in dataclasses.fields(part):
        if field.name in part.unused_knobs() and getattr(part, field.name) != field.default:
            raise NasfaceError(f"{where}.{field.name}: does not apply to {what} (only to {users}); remove it")


# -- which choice of a knob costs least ---------------------------------------------------------
COST_ORDER = "cost_order"  # field metadata: a sort key that puts the field's cheaper choices first


def cost_ordered(default, cheaper_first: Callable) -> dataclasses.Field:
    """A spec field whose choices ``cheaper_first`` (a sort key) orders from the cheapest; fields without
    one go by ``default_cost_key``.  ``nasface.arch.space.cheapest_spec`` reads these orders."""
    return dataclasses.field(default=default, metadata={COST_ORDER: cheaper_first})


def default_cost_key(choice) -> tuple:
    """Off before on, none before some, smaller numbers before larger; other choices (activations,
    variants) count as costing alike and keep the space's order."""
    if choice is None or isinstance(choice, bool):
        return (0, bool(choice))
    if isinstance(choice, (int, float)):
        return (1, choice)
    return (2,)


def larger_is_cheaper(choice: int) -> int:
    """The cost order of a stride or a group count: the larger, the less work."""
    return -choice


def se_ratio_cost(ratio: int) -> tuple[bool, int]:
    """No SE first, then the larger reductions, whose layers are smaller."""
    return ratio != 0, -ratio


# -- convolution + BatchNorm (+ activation) ----------------------------------------------------
def conv_bn_cost(counter: CostCounter, name: str, cout: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, act: str | None = None, padding: int | None = None,
                 cin: int | None = None) -> None:
    counter.conv(name, cout, kernel, stride, groups, padding=padding, cin=cin)
    counter.batchnorm(name + ".bn")
    if act is not None:
        activation_cost(counter, name + ".act", act, cout)


# -- squeeze-and-excitation ---------------------------------------------------------------------
def se_cost(counter: CostCounter, name: str, channels: int, ratio: int, act: str = "prelu",
            reduced: int | None = None) -> None:
    reduced = channels // ratio if reduced is None else reduced
    counter.linear(name + ".fc1", channels, reduced, bias=True)
    activation_cost(counter, name + ".act", act, reduced, positions=1)  # on the pooled vector
    counter.linear(name + ".fc2", reduced, channels, bias=True)


def check_se_ratio(where: str, channels: int, ratio: int) -> None:
    if ratio < 0:
        raise NasfaceError(f"{where}.se_ratio: must be 0 (no SE) or a positive reduction, got {ratio}")
    if ratio and channels // ratio < 1:
        raise NasfaceError(f"{where}.se_ratio: reduction {ratio} leaves no channel out of {channels}")


@dataclass(frozen=True)
class BlockSpec:
    """The knobs of one block family; subclasses are frozen dataclasses."""

    family: ClassVar[str] = ""

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        raise NotImplementedError

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        raise NotImplementedError

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        """The block as a torch module, from the family's ``module.py`` (imported here, not with the spec)."""
        raise NotImplementedError

    def deployed(self, module: nn.Module) -> nn.Module:
        """The built block ``module`` as a device runs it (a copy where that differs); itself by default."""
        return module

    def learnt(self, module: nn.Module):
        """What training decided about the built block ``module`` that its deployed cost depends on, as
        plain data (it travels with a candidate's metrics); None where the deployed block is the spec's."""
        return None

    def deployed_cost(self, counter: CostCounter, name: str, cout: int, stride: int, learnt) -> None:
        """``add_cost`` of the block as deployed, given what ``learnt`` returned for its trained module."""
        raise NotImplementedError


__getattr__ = module_side(__name__)
