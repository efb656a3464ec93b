"""The layers the block families share, as torch modules; their cost rules are in ``__init__.py`` beside
this file (``activation_cost``, ``conv_bn_cost``, ``se_cost``)."""

from __future__ import annotations

import torch
from torch import nn


def activation(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(channels)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "swish":
        return nn.SiLU(inplace=True)
    raise ValueError(f"unknown activation {kind!r}")  # specs are validated before building


# -- convolution + BatchNorm (+ activation) ---------------------------------------------------
def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: str | None = None, padding: int | None = None) -> nn.Sequential:
    padding = (kernel - 1) // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(activation(act, cout))
    return nn.Sequential(*layers)


# -- squeeze-and-excitation ---------------------------------------------------------------------
class SqueezeExcite(nn.Module):
    """Global pool -> FC (c -> c/r, bias) -> act -> FC (c/r -> c, bias) -> sigmoid gate.

    VarGFaceNet's SE (1x1 convolutions with bias on the pooled map) and SeesawFaceNets' SE
    (Linear layers) cost the same; both use PReLU inside.  MixFaceNets' SE uses its block's
    activation (Swish); GhostNet's rounds its reduced width (``reduced``) and gates with a hard
    sigmoid.
    """

    def __init__(self, channels: int, ratio: int, act: str = "prelu", reduced: int | None = None,
                 hard_gate: bool = False):
        super().__init__()
        reduced = channels // ratio if reduced is None else reduced
        self.fc1 = nn.Linear(channels, reduced)
        self.act = activation(act, reduced)
        self.fc2 = nn.Linear(reduced, channels)
        self.gate = nn.functional.hardsigmoid if hard_gate else torch.sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3))))))
        return x * gate[:, :, None, None]
