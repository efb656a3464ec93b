"""Analytic cost of an architecture spec: FLOPs (two conventions), MACs, parameters, memory.

Nothing here builds a module or runs a forward pass.  Each block family's file calls the
``CostCounter`` primitives in the same order as its module creates layers; the tests hold
the totals equal to fvcore / ptflops and to ``sum(p.numel())`` of the built model.

Conventions
-----------
``macs``: multiply-accumulates of convolution and fully connected layers (the papers' "MAdds",
what fvcore and ptflops report for those layers).

``lfr``: insightface's LFR2019 counter, which the challenge used for its 1G FLOPs limit.  Only
convolution and fully connected layers count.  A convolution costs
``int((2*Cin*k*k - 1) * Hout*Wout*Cout / groups)`` without bias and
``2*Cin/groups*k*k*Hout*Wout*Cout`` with bias; a fully connected layer ``2*in*out``, minus
``out`` without bias.  Note the counter divides the ``-1`` (the saved addition per output)
by the number of groups as well: that is what gives VarGFaceNet's published 1,022,864,152.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

BYTES_PER_FP32 = 4
CONVENTIONS = ("lfr", "macs")


def conv_output_size(size: int, kernel: int, stride: int, padding: int, ceil: bool = False) -> int:
    if not ceil:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    # torch's ceil mode drops a last window that would start in the right padding
    return out - 1 if (out - 1) * stride >= size + padding else out


def lfr_conv_flops(cin: int, cout: int, kernel: int, groups: int, out_hw: int, bias: bool) -> int:
    if bias:
        return 2 * cin * kernel * kernel * out_hw * cout // groups
    # The challenge's counter computed float((2*Cin*k*k - 1)*HWC) / groups and truncated;
    # integer floor division is the same for these positive values.
    return (2 * cin * kernel * kernel - 1) * out_hw * cout // groups


@dataclass(frozen=True)
class LayerCost:
    name: str
    section: str
    macs: int
    lfr_flops: int
    params: int


@dataclass
class CostCounter:
    """Walks a network layer by layer, tracking the feature-map shape and the live tensors.

    ``channels``, ``height``, ``width`` are the current feature map.  Totals are kept per section
    (stem, head, stage1, ..., embedding); ``record_layers`` also keeps every layer, by name.  Peak
    activation memory is the largest, over compute layers, of input + output + every tensor held
    for a later use (residual shortcuts, branch outputs), at batch 1.
    """

    channels: int
    height: int
    width: int
    record_layers: bool = False
    layers: list[LayerCost] = field(default_factory=list)
    sections: dict[str, list[int]] = field(default_factory=dict)  # name -> [macs, lfr_flops, params]
    section: str = ""
    peak_activation_elems: int = 0
    # the elements the PReLUs take: no FLOPs, but time, and on some runtimes time that depends on the
    # data (``nasface.latency.table.Correction``)
    prelu_elems: int = 0
    _held_elems: int = 0

    # -- shape -----------------------------------------------------------------------------
    @property
    def elems(self) -> int:
        return self.channels * self.height * self.width

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def set_shape(self, channels: int, height: int, width: int) -> None:
        self.channels, self.height, self.width = channels, height, width

    @contextlib.contextmanager
    def in_section(self, name: str):
        previous, self.section = self.section, name
        try:
            yield
        finally:
            self.section = previous

    @contextlib.contextmanager
    def holding(self, elems: int):
        """A tensor of ``elems`` stays alive (a shortcut) while the enclosed layers run."""
        self._held_elems += elems
        try:
            yield
        finally:
            self._held_elems -= elems

    def _live(self, in_elems: int, out_elems: int) -> None:
        self.peak_activation_elems = max(self.peak_activation_elems, in_elems + out_elems + self._held_elems)

    def add(self, name: str, macs: int, lfr_flops: int, params: int) -> None:
        entry = self.sections.get(self.section)
        if entry is None:
            entry = self.sections[self.section] = [0, 0, 0]
        entry[0] += macs
        entry[1] += lfr_flops
        entry[2] += params
        if self.record_layers:
            self.layers.append(LayerCost(name, self.section, macs, lfr_flops, params))

    # -- layers ----------------------------------------------------------------------------
    def conv(self, name: str, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             padding: int | None = None, bias: bool = False, cin: int | None = None) -> None:
        """A 2-D convolution on the current map (``cin`` narrows it to a channel slice)."""
        cin = self.channels if cin is None else cin
        padding = (kernel - 1) // 2 if padding is None else padding
        h = conv_output_size(self.height, kernel, stride, padding)
        w = conv_output_size(self.width, kernel, stride, padding)
        out_hw = h * w
        self.add(name, cin // groups * kernel * kernel * out_hw * cout,
                 lfr_conv_flops(cin, cout, kernel, groups, out_hw, bias),
                 cout * (cin // groups) * kernel * kernel + (cout if bias else 0))
        self._live(cin * self.height * self.width, cout * out_hw)
        self.set_shape(cout, h, w)

    def linear(self, name: str, fin: int, fout: int, bias: bool) -> None:
        self.add(name, fin * fout, 2 * fin * fout - (0 if bias else fout), fin * fout + (fout if bias else 0))
        self._live(fin, fout)

    def params(self, name: str, count: int) -> None:
        """Parameters of a layer that does no convolution / FC work (BatchNorm, PReLU)."""
        if count:
            self.add(name, 0, 0, count)

    def prelu(self, name: str, channels: int, positions: int | None = None) -> None:
        """A PReLU on ``channels`` channels at ``positions`` places (by default every place of the current map)."""
        self.params(name, channels)
        self.prelu_elems += channels * (self.height * self.width if positions is None else positions)

    def batchnorm(self, name: str, channels: int | None = None) -> None:
        self.params(name, 2 * (self.channels if channels is None else channels))

    def pool(self, kernel: int, stride: int, padding: int = 0, ceil: bool = False) -> None:
        self.set_shape(self.channels,
                       conv_output_size(self.height, kernel, stride, padding, ceil),
                       conv_output_size(self.width, kernel, stride, padding, ceil))

    def absorb(self, part: "CostCounter", times: int = 1) -> None:
        """Add the totals of a sub-walk (one block, counted on its own) to the current section, ``times``
        over (blocks that repeat on the same map, each starting and ending where the last did)."""
        for macs, lfr_flops, params in part.sections.values():
            self.add("", macs * times, lfr_flops * times, params * times)
        self.prelu_elems += part.prelu_elems * times
        self.peak_activation_elems = max(self.peak_activation_elems, part.peak_activation_elems + self._held_elems)
        self.set_shape(*part.shape)

    # -- totals ----------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        return sum(entry[0] for entry in self.sections.values())

    @property
    def lfr_flops(self) -> int:
        return sum(entry[1] for entry in self.sections.values())

    @property
    def total_params(self) -> int:
        return sum(entry[2] for entry in self.sections.values())


@dataclass(frozen=True)
class CostReport:
    """What ``nasface count --json`` prints."""

    convention: str
    flops: int
    macs: int
    lfr_flops: int
    params: int
    weight_bytes: int
    activation_bytes: int
    sections: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {
            "convention": self.convention,
            "flops": self.flops,
            "macs": self.macs,
            "lfr_flops": self.lfr_flops,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "stages": list(self.sections),
        }


def report_from_counter(counter: CostCounter, convention: str) -> CostReport:
    sections = tuple({"name": name, "flops": lfr if convention == "lfr" else macs, "macs": macs,
                      "lfr_flops": lfr, "params": params}
                     for name, (macs, lfr, params) in counter.sections.items())
    params = counter.total_params
    return CostReport(
        convention=convention,
        flops=counter.lfr_flops if convention == "lfr" else counter.macs,
        macs=counter.macs,
        lfr_flops=counter.lfr_flops,
        params=params,
        weight_bytes=BYTES_PER_FP32 * params,
        activation_bytes=BYTES_PER_FP32 * counter.peak_activation_elems,
        sections=sections,
    )
