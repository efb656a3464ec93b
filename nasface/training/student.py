"""The candidate as the proxy trains it: its spec at the proxy's resolution, fed 112x112 faces."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from nasface.core.errors import NasfaceError
from nasface.arch.model import build_model
from nasface.arch.spec import ArchSpec

class ResizedInput(nn.Module):
    """Feeds a network built for ``size`` x ``size`` from 112x112 faces (the low-resolution proxy)."""

    def __init__(self, network: nn.Module, size: int):
        super().__init__()
        self.network = network
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return self.network(x)


def proxy_spec(spec: ArchSpec, resolution: int) -> ArchSpec:
    """The candidate as the proxy trains it: same blocks, input ``resolution``, global kernel unpinned."""
    if resolution == spec.input_size:
        return spec
    try:
        return dataclasses.replace(spec, input_size=resolution,
                                   embedding=dataclasses.replace(spec.embedding, kernel=None))
    except NasfaceError as err:
        raise NasfaceError(f"{spec.name} cannot run at the proxy resolution {resolution}: {err}") from None


def build_student(spec: ArchSpec, resolution: int) -> nn.Module:
    network = build_model(proxy_spec(spec, resolution))
    return network if resolution == spec.input_size else ResizedInput(network, resolution)
