"""FLGC: fully learnable group convolution (FLGC paper, section 2 and Algorithm 1).

A 1x1 convolution with G groups whose membership is learnt end to end.  Two meta selection
matrices, S-bar (input channels x G) and T-bar (filters x G), go through a row softmax; the
forward pass uses their hard argmax (one group per channel and per filter), and the gradient
flows to the softmax as a straight-through estimator.  The dense weight is masked with
M = T S^T, so filter n sees input channel c only when both are in the same group.

After training, ``deploy`` turns the layer into a real grouped convolution by re-ordering the
input channels and filters group by group (section 2.3): one ``groups=G`` convolution when the
learnt groups are even, one convolution per group when they are not.  The deployed layer is
numerically the trained one.

The meta matrices start as Gaussian noise around a balanced, contiguous assignment, so an
untrained layer deploys as a standard G-group convolution, which is what the spec's analytic
cost counts; ``FLGCSpec.learnt`` reads the learnt group sizes of a trained block and
``FLGCSpec.deployed_cost`` counts the deployed block from them.

Keeping a trained candidate within budget: by default (``balanced: true``) the hard assignment
is a *balanced* argmax, so the learnt groups stay equal in size and the deployed cost is exactly
the spec's; with ``balanced: false`` groups are free (the paper's argmax), and the search counts
the deployed network from the learnt groups after training and marks it infeasible if it is over.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from nasface.arch.blocks.base import check_divisible, cost_ordered, larger_is_cheaper, module_side
from nasface.arch.blocks.bottleneck import BottleneckSpec
from nasface.arch.cost import CostCounter

if typing.TYPE_CHECKING:
    from torch import nn


def grouped_pointwise_cost(counter: CostCounter, name: str, sizes: list) -> None:
    """Cost of a deployed FLGC layer with these (input channels, filters) per group: a grouped conv
    when even, else one conv per group."""
    sizes = [tuple(size) for size in sizes]  # lists, when they come from a candidate's JSON metrics
    cin = sum(size[0] for size in sizes)
    cout = sum(size[1] for size in sizes)
    if len(set(sizes)) == 1:
        counter.conv(name, cout, groups=len(sizes), cin=cin)
        return
    h, w = counter.height, counter.width
    for index, (cin_g, cout_g) in enumerate(sizes):
        if cin_g and cout_g:
            counter.set_shape(cin, h, w)
            counter.conv(f"{name}.group{index}", cout_g, cin=cin_g)
    counter.set_shape(cout, h, w)


@dataclass(frozen=True)
class FLGCSpec(BottleneckSpec):
    """An inverted-residual bottleneck whose pointwise convolutions are FLGC layers."""

    family = "flgc"
    groups: int = cost_ordered(4, larger_is_cheaper)
    balanced: bool = True

    def pointwise(self, cin: int, cout: int) -> nn.Module:
        from nasface.arch.blocks.flgc.module import FLGCConv1x1

        return FLGCConv1x1(cin, cout, self.groups, self.balanced)

    def pointwise_cost(self, counter: CostCounter, name: str, cout: int) -> None:
        # the balanced start (and any balanced training): a standard G-group convolution
        counter.conv(name, cout, groups=self.groups)

    def deployed(self, module: nn.Module) -> nn.Module:
        from nasface.arch.blocks.flgc.module import deploy

        return deploy(module)

    def learnt(self, module: nn.Module) -> list[list[list[int]]]:
        """The (input channels, filters) of each learnt group of the block's two FLGC layers, expansion first."""
        from nasface.arch.blocks.flgc.module import FLGCConv1x1

        return [[list(size) for size in layer.deployed_groups()]
                for layer in module.modules() if isinstance(layer, FLGCConv1x1)]

    def deployed_cost(self, counter: CostCounter, name: str, cout: int, stride: int, learnt) -> None:
        if len(learnt) != 2:
            raise ValueError(f"{name}: an FLGC block has 2 learnt layers, got {len(learnt)}")
        layers = iter(learnt)
        self.bottleneck_cost(counter, name, cout, stride,
                             lambda counter, layer, _cout: grouped_pointwise_cost(counter, layer, next(layers)))

    def check_pointwise(self, where: str, cin: int, cout: int) -> None:
        why = f"FLGC starts from {self.groups} even groups"
        check_divisible(f"{where}.groups", cin, self.groups, why)
        check_divisible(f"{where}.groups", cout, self.groups, why)


__getattr__ = module_side(__name__)
