"""ShuffleNetV2's units (Ma et al. 2018), as ShuffleFaceNet (Martínez-Díaz et al. 2019) uses them.

- A block that keeps its shape splits its channels in two halves: one passes through, the other
  runs 1x1 (BN, act) -> ``kernel`` x ``kernel`` depthwise (BN) -> 1x1 (BN, act); the halves are
  concatenated.
- Any other block (stride 2, or a change of width) feeds the whole input to two branches, each
  making half the output: depthwise (with the stride, BN) -> 1x1 (BN, act), and the branch above.

Every unit ends with a two-group channel shuffle (interleaving the halves).  ShuffleFaceNet uses
PReLU where ShuffleNetV2 has ReLU.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import BlockSpec, check_activation, check_divisible, conv_bn_cost, module_side
from nasface.arch.cost import CostCounter
from nasface.core.errors import NasfaceError

if typing.TYPE_CHECKING:
    from torch import nn

KERNELS = (3, 5)


def _branch_cost(counter: CostCounter, name: str, half: int, kernel: int, stride: int, act: str,
                 cin: int) -> None:
    conv_bn_cost(counter, name + ".0", half, act=act, cin=cin)
    conv_bn_cost(counter, name + ".1", half, kernel, stride, groups=half)
    conv_bn_cost(counter, name + ".2", half, act=act)


@dataclass(frozen=True)
class ShuffleV2Spec(BlockSpec):
    family = "shufflev2"
    kernel: int = 3
    act: str = "prelu"

    def check(self, where: str, cin: int, cout: int, stride: int) -> None:
        check_activation(f"{where}.act", self.act)
        if self.kernel not in KERNELS:
            raise NasfaceError(f"{where}.kernel: the depthwise kernel is 3 or 5, got {self.kernel}")
        check_divisible(f"{where}.width", cout, 2, "a ShuffleNetV2 unit makes its output in two halves")

    def add_cost(self, counter: CostCounter, name: str, cout: int, stride: int) -> None:
        cin, h, w = counter.shape
        half = cout // 2
        if stride == 1 and cin == cout:
            with counter.holding(half * h * w):  # the half that passes through
                counter.set_shape(half, h, w)
                _branch_cost(counter, name + ".branch", half, self.kernel, stride, self.act, cin=half)
        else:
            with counter.holding(counter.elems):  # the input, for the second branch
                conv_bn_cost(counter, name + ".passthrough.0", cin, self.kernel, stride, groups=cin)
                conv_bn_cost(counter, name + ".passthrough.1", half, act=self.act)
            out_h, out_w = counter.height, counter.width
            with counter.holding(half * out_h * out_w):  # the first branch's output, to be concatenated
                counter.set_shape(cin, h, w)
                _branch_cost(counter, name + ".branch", half, self.kernel, stride, self.act, cin=cin)
        counter.set_shape(cout, counter.height, counter.width)

    def build(self, cin: int, cout: int, stride: int) -> nn.Module:
        from nasface.arch.blocks.shufflev2.module import ShuffleUnit

        return ShuffleUnit(cin, cout, stride, self)


__getattr__ = module_side(__name__)
