"""Head blocks: what follows the stem convolution.

- ``dw``: the 3x3 depthwise convolution (BN, act) of MobileFaceNet, MobiFace and SeesawFaceNets;
- ``varg``: VarGFaceNet's head setting, a VarG normal block of stride 2 (factor 1, SE) after a
  stride-1 stem, so that the first down-sampling keeps detail;
- ``none``: nothing (IR-ResNet goes straight from the stem to its stages).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import (check_activation, check_unused, conv_bn_cost, cost_ordered, larger_is_cheaper,
                                      module_side, se_ratio_cost)
from nasface.arch.blocks.varg import VarGSpec
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn

HEAD_KINDS = ("dw", "varg", "none")
# The knobs only a VarG head reads: on another head each must keep its default (the value every spec
# held before they were refused, so older spec files and stored trials still load).
VARG_HEAD_KNOBS = ("group_size", "factor", "se_ratio")


@dataclass(frozen=True)
class HeadSpec:
    kind: str = "dw"
    stride: int = cost_ordered(1, larger_is_cheaper)
    act: str = "prelu"
    group_size: int = 8
    factor: int = 1
    se_ratio: int = cost_ordered(4, se_ratio_cost)

    def unused_knobs(self) -> tuple[str, ...]:
        """The fields this kind of head does not read (left out when a spec is written)."""
        return () if self.kind == "varg" else VARG_HEAD_KNOBS

    def _varg(self) -> VarGSpec:
        return VarGSpec(group_size=self.group_size, factor=self.factor, se_ratio=self.se_ratio, act=self.act)

    def check(self, where: str, channels: int) -> None:
        if self.kind not in HEAD_KINDS:
            raise NasfaceError(f"{where}.kind: unknown head {self.kind!r} (choose from {', '.join(HEAD_KINDS)})")
        if self.stride not in (1, 2):
            raise NasfaceError(f"{where}.stride: must be 1 or 2, got {self.stride}")
        if self.kind == "none" and self.stride != 1:
            raise NasfaceError(f"{where}.stride: a 'none' head cannot down-sample; use stride 1")
        check_activation(f"{where}.act", self.act)
        check_unused(self, where, f"a {self.kind} head", "a varg head")
        if self.kind == "varg":
            self._varg().check(where, channels, channels, self.stride)

    def add_cost(self, counter: CostCounter) -> None:
        if self.kind == "dw":
            conv_bn_cost(counter, "head.depthwise", counter.channels, 3, self.stride,
                         groups=counter.channels, act=self.act)
        elif self.kind == "varg":
            self._varg().head_cost(counter, "head", self.stride)

    def build(self, channels: int) -> nn.Module:
        from nasface.arch.blocks.heads.module import head_block

        return head_block(self, channels)


__getattr__ = module_side(__name__)
