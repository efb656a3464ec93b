"""The analytic cost model against the papers, against fvcore / ptflops, and on random specs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import nasface
from nasface.arch.blocks.base import SqueezeExcite
from nasface.arch.blocks.flgc import deploy
from nasface.arch.cost import CostCounter, lfr_conv_flops
from nasface.arch.model import cost_counter
from nasface.arch.spec import MAX_REPEATS, spec_from_dict
from tests.factories import fvcore_macs, param_count, ptflops_macs
from tests.factories import random_specs

PRESETS = nasface.preset_names()


# -- the papers' figures ------------------------------------------------------------------------
def test_vargfacenet_matches_the_lfr_counter_exactly():
    figures = nasface.count("vargfacenet")
    assert figures["flops"] == 1_022_864_152  # VarGFaceNet's published LFR2019 figure, to the unit
    assert figures["convention"] == "lfr"
    assert abs(figures["params"] - 5.2e6) / 5.2e6 < 0.02
    assert figures["weight_bytes"] == 4 * figures["params"]
    assert figures["weight_bytes"] > 20 * 2**20 * 0.95  # "memory footprint is 20M"


@pytest.mark.parametrize("preset, macs, params", [
    ("mobilefacenet", 221e6, 1.2e6),
    ("seesaw-shuffle-facenet", 146e6, 1.35e6),
    ("seesaw-share-facenet", 146e6, 1.35e6),
    ("dw-seesawfacenet", 526e6, 4.2e6),
    ("dw-seesawfacenet-v1", 514e6, 4.1e6),  # Table 4 prints "4.1M"; the count is 4.18M
    ("iresnet50", 6.3e9, 43.6e6),
])
def test_presets_reproduce_their_papers(preset, macs, params):
    figures = nasface.count(preset, convention="macs")
    assert figures["flops"] == figures["macs"]
    assert abs(figures["macs"] - macs) / macs < 0.02
    assert abs(figures["params"] - params) / params < 0.04  # Seesaw's table gives 1.3M; "1.3-1.4M"


@pytest.mark.parametrize("preset, convention, flops, flops_unit, params, params_unit", [
    ("vargfacenet-y2", "lfr", 933, 1e6, None, None),            # VarGFaceNet Table 2: "933M"
    ("mobilefacenet-relu", "lfr", 0.44, 1e9, 1.19, 1e6),         # MarginDistillation Table I
    ("dw-seesawfacenet-v1", "macs", 514, 1e6, None, None),      # SeesawFaceNets Table 4: "514M"
])
def test_published_figures_to_their_printed_digits(preset, convention, flops, flops_unit, params, params_unit):
    figures = nasface.count(preset, convention=convention)
    digits = len(str(flops).partition(".")[2])
    assert round(figures["flops"] / flops_unit, digits) == flops
    if params is not None:
        assert round(figures["params"] / params_unit, len(str(params).partition(".")[2])) == params


def authors_mixfacenet_flops(model: nn.Module) -> int:
    """FLOPs as MixFaceNets' authors count them (their count_model_flops, read in fdbtrs/mixfacenets): 2 per
    multiply-accumulate plus 1 per bias of every convolution and FC layer, 2 per BatchNorm input element,
    1 per activation input element, and in each SE block 1 per pooled element and 1 per sigmoid output
    (modules in their SE, functions in nasface's)."""
    total = 0

    def add(count: int) -> None:
        nonlocal total
        total += count

    counters = {
        nn.Conv2d: lambda m, i, o: add((2 * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
                                        + (m.bias is not None)) * o.numel()),
        nn.Linear: lambda m, i, o: add(2 * m.weight.numel() + (0 if m.bias is None else m.bias.numel())),
        nn.BatchNorm2d: lambda m, i, o: add(2 * i[0].numel()),
        nn.BatchNorm1d: lambda m, i, o: add(2 * i[0].numel()),
        nn.PReLU: lambda m, i, o: add(i[0].numel()),
        nn.SiLU: lambda m, i, o: add(i[0].numel()),
        SqueezeExcite: lambda m, i, o: add(i[0].numel() + m.fc2.out_features),
    }
    handles = [module.register_forward_hook(counters[type(module)])
               for module in model.modules() if type(module) in counters]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 112, 112))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.parametrize("variant", ["mixfacenet", "shufflemixfacenet"])
@pytest.mark.parametrize("size, mflops, params", [("xs", 161.9, 1.04), ("s", 451.7, 3.07), ("m", 626.1, 3.95)])
def test_mixfacenets_match_their_published_counts(variant, size, mflops, params):
    # fdbtrs/mixfacenets README: the shuffle variants cost the same as the plain ones
    spec = nasface.load_spec(f"{variant}-{size}")
    figures = nasface.count(spec)
    assert round(figures["params"] / 1e6, 2) == params
    # S and M to the printed digit; XS counts 161.99 (README: where a preset departs from its paper)
    assert abs(authors_mixfacenet_flops(nasface.build_model(spec)) / 1e6 - mflops) < 0.1


@pytest.mark.parametrize("stem_stride, published_mflops", [(2, 60.3), (1, 215.7)])
def test_ghostfacenetv1_w13_is_within_2_percent_of_its_published_flops(stem_stride, published_mflops):
    # GhostFaceNets' figures for width 1.3 (HamadYA/GhostFaceNets plot_parameters.py); their TensorFlow
    # counter also counts element-wise operations, so nasface's MACs are 1.7-1.8 % below (README)
    spec = nasface.load_spec("ghostfacenetv1-w1.3")
    if stem_stride == 1:  # GhostFaceNetV1-1.3-1: a stride-1 stem, a 7x7 final map
        spec = dataclasses.replace(spec, stem=dataclasses.replace(spec.stem, stride=1),
                                   embedding=dataclasses.replace(spec.embedding, kernel=7))
    macs = nasface.count(spec, convention="macs")["macs"] / 1e6
    assert 0.98 * published_mflops < macs < published_mflops


def test_ghostfacenetv1_widths_order_their_costs():
    figures = [nasface.count(f"ghostfacenetv1-w{width}") for width in ("0.5", "1.0", "1.2", "1.3", "1.4")]
    assert [f["flops"] for f in figures] == sorted(f["flops"] for f in figures)
    assert [f["params"] for f in figures] == sorted(f["params"] for f in figures)


@pytest.mark.parametrize("preset, published_mflops", [("shufflefacenet-0.5x", 66.9), ("shufflefacenet-1.5x", 577.5)])
def test_shufflefacenets_are_within_0_3_percent_of_their_published_flops(preset, published_mflops):
    # as GhostFaceNets' comparison (plot_parameters.py) quotes ShuffleFaceNet: two FLOPs per MAC
    flops = 2 * nasface.count(preset, convention="macs")["macs"] / 1e6
    assert abs(flops - published_mflops) / published_mflops < 0.003


def test_mobiface_follows_its_table_not_its_summary():
    figures = nasface.count("mobiface", convention="macs")
    fc_weights = 7 * 7 * 512 * 512
    assert figures["params"] > fc_weights  # the 512-d FC on 7x7x512 alone
    assert figures["params"] > 2.4e6 * 5   # hence not the published 2.4M


def test_lfr_convention_is_about_twice_the_macs():
    for preset in PRESETS:
        figures = nasface.count(preset)
        assert 1.9 < figures["lfr_flops"] / figures["macs"] < 2.0


# -- the counter's formulas on hand-computed cases -------------------------------------------
def test_lfr_conv_formula_hand_cases():
    # 3x3 conv, 16 -> 32 channels, 8x8 output, no bias: (2*16*9 - 1) * 64 * 32
    assert lfr_conv_flops(16, 32, 3, 1, 64, bias=False) == 287 * 64 * 32
    assert lfr_conv_flops(16, 32, 3, 1, 64, bias=True) == 288 * 64 * 32
    # grouped: the counter divides the whole product, -1 included, by the groups
    assert lfr_conv_flops(16, 32, 3, 2, 64, bias=False) == (287 * 64 * 32) // 2
    assert lfr_conv_flops(3, 5, 1, 1, 1, bias=False) == 25  # int(5 * 5 / 1)
    assert lfr_conv_flops(8, 8, 3, 8, 1, bias=False) == (2 * 8 * 9 - 1) * 8 // 8


def test_counter_conv_and_linear_both_conventions():
    counter = CostCounter(4, 10, 10)
    counter.conv("c", 6, kernel=3, stride=2, groups=2)
    assert (counter.channels, counter.height, counter.width) == (6, 5, 5)
    assert counter.macs == 2 * 9 * 25 * 6
    assert counter.lfr_flops == (2 * 4 * 9 - 1) * 25 * 6 // 2
    counter.linear("fc", 150, 10, bias=True)
    assert counter.macs == 2 * 9 * 25 * 6 + 1500
    assert counter.lfr_flops == (2 * 4 * 9 - 1) * 25 * 6 // 2 + 3000
    assert counter.total_params == 6 * 2 * 9 + 1510


# -- exact against independent counters ------------------------------------------------------
@pytest.mark.parametrize("preset", PRESETS)
def test_presets_match_fvcore_ptflops_and_parameters(preset):
    spec = nasface.load_spec(preset)
    model = nasface.build_model(spec)
    figures = nasface.count(spec)
    assert fvcore_macs(model) == figures["macs"]
    assert ptflops_macs(model) == figures["macs"]
    assert param_count(model) == figures["params"]
    assert prelu_elems(model) == cost_counter(spec).prelu_elems


def prelu_elems(model: nn.Module, batch: int = 1) -> int:
    """The elements the PReLUs of ``model`` take in a forward pass, per face."""
    taken = 0

    def hook(module, inputs, output):
        nonlocal taken
        taken += inputs[0].numel() // batch

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.PReLU)]
    with torch.no_grad():
        model.eval()(torch.zeros(batch, 3, 112, 112))
    for handle in handles:
        handle.remove()
    return taken


def measured_peak_elems(model: nn.Module) -> int:
    """The largest input + output of any convolution or FC layer in a real forward pass."""
    peak = 0

    def hook(module, inputs, output):
        nonlocal peak
        peak = max(peak, inputs[0].numel() + output.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 112, 112))
    for handle in handles:
        handle.remove()
    return peak


@pytest.mark.parametrize("preset", ["mobilefacenet", "vargfacenet", "seesaw-share-facenet"])
def test_peak_activation_covers_every_layer(preset):
    spec = nasface.load_spec(preset)
    figures = nasface.count(spec)
    measured = measured_peak_elems(nasface.build_model(spec))
    # Every layer's own input + output fits under the peak, and shortcuts make it larger.
    assert 4 * measured <= figures["activation_bytes"] <= 4 * 3 * measured


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=random_specs())
def test_random_specs_are_exact(spec):
    # The analytic cost is the deployed network's: FLGC layers as real group convolutions.
    model = deploy(nasface.build_model(spec))
    figures = nasface.count(spec)
    assert param_count(model) == figures["params"]
    assert fvcore_macs(model) == figures["macs"]
    assert ptflops_macs(model) == figures["macs"]
    assert prelu_elems(model, batch=2) == cost_counter(spec).prelu_elems
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 3, 112, 112)).shape == (2, spec.embedding.size)


def test_odd_feature_maps_are_exact():
    # 112 -> 56 -> 28 -> 14 -> 7 -> 4: every family's stride-2 block on an odd 7x7 map
    for knobs in ({"family": "seesaw", "mapping": True}, {"family": "varg"}, {"family": "ir"},
                  {"family": "flgc"}, {"family": "bottleneck"},
                  {"family": "mixconv", "kernels": 4, "expand_groups": 3, "shuffle": True},
                  {"family": "ghost", "kernel": 5, "se_ratio": 4}, {"family": "shufflev2", "kernel": 5}):
        spec = spec_from_dict({"name": "odd", "stem": {"width": 16, "stride": 2},
                               "head": {"kind": "dw", "stride": 2},
                               "stages": [{"family": "bottleneck", "repeats": 1, "width": 16, "stride": 2},
                                          {"family": "bottleneck", "repeats": 1, "width": 16, "stride": 2},
                                          {**knobs, "repeats": 1, "width": 32, "stride": 2}],
                               "embedding": {"kind": "gdc", "size": 128, "width": 32}})
        model = deploy(nasface.build_model(spec))
        figures = nasface.count(spec)
        assert fvcore_macs(model) == figures["macs"], knobs
        assert param_count(model) == figures["params"], knobs


@st.composite
def deep_specs(draw):
    """A random spec whose stages repeat their block up to the most a spec may (``MAX_REPEATS``)."""
    spec = draw(random_specs())
    repeats = st.integers(1, 12) | st.sampled_from([MAX_REPEATS - 1, MAX_REPEATS])
    return dataclasses.replace(spec, stages=tuple(dataclasses.replace(stage, repeats=draw(repeats))
                                                  for stage in spec.stages))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=deep_specs())
def test_repeated_blocks_counted_in_closed_form_equal_block_by_block(spec):
    # count: first block + (repeats - 1) x the repeated one; record_layers: every block walked on its own
    closed, walked = cost_counter(spec), cost_counter(spec, record_layers=True)
    assert closed.sections == walked.sections
    assert closed.peak_activation_elems == walked.peak_activation_elems
    assert closed.prelu_elems == walked.prelu_elems
    assert closed.shape == walked.shape
    assert len(walked.layers) > 0 and sum(layer.lfr_flops for layer in walked.layers) == closed.lfr_flops
