"""Each block family's module: structure from its paper, behaviour, and the FLGC conversion."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nasface.arch.blocks import (BottleneckSpec, FLGCSpec, GhostSpec, HeadSpec, IRSpec, MixConvSpec, SeesawSpec,
                                 ShuffleV2Spec, VarGSpec)
from nasface.arch.blocks.mixconv import split_channels
from nasface.arch.blocks.flgc import FLGCConv1x1, GroupedPointwise, deploy, grouped_pointwise_cost
from nasface.arch.blocks.seesaw import channel_shuffle
from nasface.arch.blocks.varg import VarGDownBlock, VarGNormalBlock
from nasface.arch.cost import CostCounter
from tests.factories import fvcore_macs, param_count


def convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def zero_last_bn(module: nn.Module) -> None:
    """Make the residual branch output zero, so a block with a shortcut returns its input."""
    last = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


def test_bottleneck_structure_and_residual():
    block = BottleneckSpec(expansion=2, se_ratio=0, act="prelu").build(64, 64, 1).eval()
    expand, depthwise, project = convs(block)
    assert (expand.in_channels, expand.out_channels, expand.kernel_size) == (64, 128, (1, 1))
    assert depthwise.groups == 128 and depthwise.stride == (1, 1)
    assert project.out_channels == 64
    zero_last_bn(block)
    x = torch.randn(2, 64, 14, 14)
    assert torch.allclose(block(x), x)  # RBlock: shortcut kept
    strided = BottleneckSpec().build(64, 128, 2).eval()
    zero_last_bn(strided)
    assert strided(x).abs().max() == 0  # Block: no shortcut when the shape changes


def test_bottleneck_se_sits_on_the_expanded_channels():
    block = BottleneckSpec(expansion=4, se_ratio=4).build(32, 32, 1)
    linears = [m for m in block.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(128, 32), (32, 128)]


def test_varg_blocks_follow_the_paper():
    spec = VarGSpec(group_size=8, factor=2, se_ratio=4)
    normal = spec.build(80, 80, 1)
    assert isinstance(normal, VarGNormalBlock)
    group_convs = [c for c in convs(normal) if c.kernel_size == (3, 3)]
    # variable group conv: constant S = 8 input channels per group, factor 2 more channels out
    assert all(c.in_channels // c.groups == 8 for c in group_convs)
    assert all(c.out_channels == 2 * c.in_channels for c in group_convs)
    down = spec.build(40, 80, 2)
    assert isinstance(down, VarGDownBlock)
    assert not any(isinstance(m, nn.Linear) for m in down.modules())  # SE only in normal blocks
    out = down(torch.randn(1, 40, 56, 56))
    assert out.shape == (1, 80, 28, 28)
    zero_last_bn(normal.sep2)
    normal.eval()
    x = torch.randn(1, 80, 28, 28)
    # sep2 outputs zero -> SE(0) = 0 -> PReLU(x) of the identity shortcut
    assert torch.allclose(normal(x), normal.act(x))


def test_varg_head_is_a_strided_normal_block():
    head = HeadSpec(kind="varg", stride=2, group_size=8, factor=1, se_ratio=4).build(40)
    assert isinstance(head, VarGNormalBlock) and not isinstance(head.shortcut, nn.Identity)
    assert head(torch.randn(1, 40, 112, 112)).shape == (1, 40, 56, 56)


def test_channel_shuffle_interleaves_two_groups():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


@pytest.mark.parametrize("variant", ["shuffle", "share"])
def test_seesaw_uneven_groups(variant):
    block = SeesawSpec(expansion=2, split=(1, 3), variant=variant, se_ratio=4).build(64, 64, 1)
    pointwise = [(c.in_channels, c.out_channels) for c in convs(block) if c.kernel_size == (1, 1)]
    expand_small, expand_large, project_first, project_second = pointwise
    assert expand_small == (16, 32) and expand_large == (48, 96)  # 1:3 of 64 -> 128
    if variant == "shuffle":
        assert (project_first, project_second) == ((32, 16), (96, 48))
    else:  # share: the large projection group reads first, across both expansion groups
        assert (project_first, project_second) == ((96, 48), (32, 16))
    assert block(torch.randn(2, 64, 14, 14)).shape == (2, 64, 14, 14)


def test_seesaw_variants_differ_and_mapping_branch():
    torch.manual_seed(0)
    shuffle = SeesawSpec(variant="shuffle").build(32, 32, 1).eval()
    torch.manual_seed(0)
    share = SeesawSpec(variant="share").build(32, 32, 1).eval()
    x = torch.randn(1, 32, 8, 8)
    assert not torch.allclose(shuffle(x), share(x))
    mapped = SeesawSpec(mapping=True).build(32, 64, 2)
    assert mapped.mapping is not None
    assert mapped(x).shape == (1, 64, 4, 4)
    assert SeesawSpec(mapping=True).build(32, 32, 1).mapping is None  # residual blocks keep identity


def test_seesaw_mapping_branch_matches_the_main_path_on_odd_maps():
    # a stride-2 3x3 depthwise conv maps 7 -> 4; the max-pool skip branch must too (CI found 7 -> 3)
    block = SeesawSpec(mapping=True).build(16, 32, 2)
    assert block(torch.randn(1, 16, 7, 7)).shape == (1, 32, 4, 4)


def test_ir_block_shortcut():
    block = IRSpec().build(64, 128, 2)
    assert not isinstance(block.shortcut, nn.Identity)
    assert block(torch.randn(1, 64, 14, 14)).shape == (1, 128, 7, 7)
    same = IRSpec().build(64, 64, 1).eval()
    zero_last_bn(same.body)
    x = torch.randn(1, 64, 7, 7)
    assert torch.allclose(same(x), x)


# -- FLGC -----------------------------------------------------------------------------------------
def scramble(layer: FLGCConv1x1, generator: torch.Generator, scale: float = 3.0) -> None:
    """Stand-in for training: move the meta selection matrices so the groups become uneven."""
    with torch.no_grad():
        layer.meta_in.add_(scale * torch.randn(layer.meta_in.shape, generator=generator))
        layer.meta_out.add_(scale * torch.randn(layer.meta_out.shape, generator=generator))


def test_flgc_starts_as_a_balanced_group_conv():
    layer = FLGCConv1x1(32, 64, 4)
    assert layer.deployed_groups() == [(8, 16)] * 4
    mask = layer.mask()
    assert mask.shape == (64, 32)
    assert mask.sum().item() == 4 * 8 * 16  # block-diagonal: each filter sees its group's 8 inputs


def test_flgc_straight_through_gradients_reach_the_meta_matrices():
    layer = FLGCConv1x1(16, 16, 4)
    out = layer(torch.randn(2, 16, 5, 5))
    out.square().mean().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.meta_in.grad is not None and layer.meta_in.grad.abs().sum() > 0
    assert layer.meta_out.grad is not None and layer.meta_out.grad.abs().sum() > 0


def test_flgc_learns_its_groups_with_sgd():
    torch.manual_seed(0)
    layer = FLGCConv1x1(8, 8, 2)
    target = torch.eye(8)[:, :, None, None]  # the identity needs filter i and input i in one group
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.randn(32, 8, 3, 3)
    for _ in range(200):
        optimiser.zero_grad()
        loss = (layer(x) - nn.functional.conv2d(x, target)).square().mean()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.05
    in_groups, out_groups = layer.assignment()
    assert torch.equal(in_groups, out_groups)  # each filter ended in its input channel's group


@settings(max_examples=60, deadline=None)
@given(cin=st.sampled_from([8, 16, 24, 40]), cout=st.sampled_from([8, 16, 32]), groups=st.sampled_from([2, 3, 4, 8]),
       seed=st.integers(0, 10_000), scale=st.sampled_from([0.0, 0.5, 3.0]))
def test_flgc_conversion_is_numerically_equal(cin, cout, groups, seed, scale):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layer = FLGCConv1x1(cin, cout, groups, balanced=False)
    scramble(layer, generator, scale)
    deployed = GroupedPointwise(layer)
    x = torch.randn(3, cin, 6, 6, generator=generator)
    with torch.no_grad():
        assert (deployed(x) - layer(x)).abs().max() <= 1e-5
    # its deployed cost, counted analytically, is what fvcore and the parameters say
    counter = CostCounter(cin, 6, 6)
    grouped_pointwise_cost(counter, "flgc", layer.deployed_groups())
    assert counter.total_params == param_count(deployed)
    assert counter.macs == sum(s[0] * s[1] for s in layer.deployed_groups()) * 36
    wrapped = nn.Sequential(nn.Upsample(size=(6, 6)), nn.Conv2d(3, cin, 1, bias=False), deployed)
    assert fvcore_macs(wrapped, size=6) == counter.macs + 3 * cin * 36


def test_flgc_bottleneck_deploys_equal_in_a_network():
    spec = FLGCSpec(expansion=2, groups=4, balanced=False)
    block = nn.Sequential(spec.build(32, 32, 1), spec.build(32, 64, 2)).eval()
    generator = torch.Generator().manual_seed(1)
    for layer in block.modules():
        if isinstance(layer, FLGCConv1x1):
            scramble(layer, generator)
    deployed = deploy(block)
    assert not any(isinstance(m, FLGCConv1x1) for m in deployed.modules())
    x = torch.randn(2, 32, 14, 14)
    with torch.no_grad():
        assert (deployed(x) - block(x)).abs().max() <= 1e-5


def test_trained_flgc_network_counts_as_deployed():
    import nasface
    from nasface.arch.model import learnt_structure
    from nasface.arch.spec import spec_from_dict

    spec = spec_from_dict({
        "name": "flgc-net", "stem": {"width": 32, "stride": 2}, "head": {"kind": "dw"},
        "stages": [{"family": "flgc", "repeats": 2, "width": 32, "stride": 2, "groups": 4, "balanced": False},
                   {"family": "flgc", "repeats": 1, "width": 64, "stride": 2, "groups": 8, "balanced": False}],
        "embedding": {"kind": "gdc", "width": 64, "size": 128}})
    model = nasface.build_model(spec)
    generator = torch.Generator().manual_seed(3)
    for layer in model.modules():
        if isinstance(layer, FLGCConv1x1):
            scramble(layer, generator)
    learnt = learnt_structure(model)
    assert list(learnt) == ["stage1.block1", "stage1.block2", "stage2.block1"]
    # uneven after "training"
    assert any(len(set(map(tuple, layer))) > 1 for block in learnt.values() for layer in block)
    deployed_figures = nasface.count(spec, learnt=learnt)
    deployed_model = deploy(model)
    assert deployed_figures["macs"] == fvcore_macs(deployed_model)
    assert deployed_figures["params"] == param_count(deployed_model)
    # uneven groups cost more than the balanced start the spec counts
    assert deployed_figures["macs"] != nasface.count(spec)["macs"]


def test_deployed_cost_of_known_learnt_groups_by_hand():
    import nasface
    from nasface.arch.model import deployed_cost
    from nasface.arch.spec import spec_from_dict

    # stem 112 -> 56, head 56 -> 28; the block expands 16 -> 32 channels at 28x28, projects 32 -> 32 at 14x14
    spec = spec_from_dict({
        "name": "one-flgc", "stem": {"width": 16, "stride": 2}, "head": {"kind": "dw", "stride": 2},
        "stages": [{"family": "flgc", "repeats": 1, "width": 32, "stride": 2, "groups": 2, "balanced": False}],
        "embedding": {"kind": "gdc", "width": 64, "size": 128}})
    metrics = {"learnt_structure": {"stage1.block1": [[[4, 20], [12, 12]], [[16, 16], [16, 16]]]}}
    spec_cost, hw = nasface.count(spec, "macs"), 28 * 28
    # the expansion: two 8 -> 16 groups as the spec counts them, learnt as 4 -> 20 and 12 -> 12;
    # the projection stays even
    macs = spec_cost["macs"] - 8 * 16 * 2 * hw + (4 * 20 + 12 * 12) * hw
    lfr = (spec_cost["lfr_flops"] - (2 * 16 - 1) * hw * 32 // 2
           + (2 * 4 - 1) * hw * 20 + (2 * 12 - 1) * hw * 12)
    params = spec_cost["params"] - 8 * 32 + (4 * 20 + 12 * 12)
    deployed = deployed_cost(spec, metrics, "macs")
    assert (deployed["flops"], deployed["macs"], deployed["lfr_flops"], deployed["params"]) == (macs, macs, lfr, params)
    assert deployed["weight_bytes"] == 4 * params and "stages" not in deployed
    assert deployed_cost(spec, metrics, "lfr")["flops"] == lfr
    assert deployed_cost(spec, {}, "lfr") == {k: v for k, v in nasface.count(spec).items() if k != "stages"}


def test_balanced_flgc_keeps_equal_groups_and_the_spec_cost():
    generator = torch.Generator().manual_seed(5)
    layer = FLGCConv1x1(32, 48, 4, balanced=True)
    scramble(layer, generator, scale=5.0)
    assert layer.deployed_groups() == [(8, 12)] * 4  # learnt membership, equal sizes
    free = FLGCConv1x1(32, 48, 4, balanced=False)
    free.load_state_dict(layer.state_dict())
    assert len(set(free.deployed_groups())) > 1       # the paper's free argmax goes uneven
    x = torch.randn(2, 32, 5, 5)
    with torch.no_grad():
        assert (GroupedPointwise(layer)(x) - layer(x)).abs().max() <= 1e-5
    spec = FLGCSpec(groups=4, balanced=True)
    block = spec.build(32, 32, 1)
    for module in block.modules():
        if isinstance(module, FLGCConv1x1):
            scramble(module, generator, scale=5.0)
    counter = CostCounter(32, 8, 8)
    spec.add_cost(counter, "b", 32, 1)
    assert counter.total_params == param_count(deploy(block))


def test_mixconv_mixes_kernel_sizes_over_channel_groups():
    block = MixConvSpec(expansion=6, kernels=3, expand_groups=2, project_groups=2, se_ratio=12).build(40, 40, 1)
    pointwise = [(c.in_channels, c.out_channels) for c in convs(block) if c.kernel_size == (1, 1)]
    assert pointwise == [(20, 120), (20, 120), (120, 20), (120, 20)]  # two groups of each 1x1 conv
    mixed = [c for c in convs(block) if c.kernel_size != (1, 1)]
    assert [(c.kernel_size[0], c.in_channels, c.groups) for c in mixed] == [(3, 80, 80), (5, 80, 80), (7, 80, 80)]
    linears = [(l.in_features, l.out_features) for l in block.modules() if isinstance(l, nn.Linear)]
    assert linears == [(240, 20), (20, 240)]  # SE on the expanded channels, reduction 12
    assert not any(isinstance(m, nn.PReLU) for m in block.modules())  # Swish inside the SE too
    zero_last_bn(block)
    block.eval()
    x = torch.randn(2, 40, 14, 14)
    assert torch.allclose(block(x), x)  # residual when the shape is kept


def test_mixconv_splits_like_mixnet_and_shuffles_after_the_residual():
    assert split_channels(20, 3) == [8, 6, 6]  # the first group takes the remainder
    uneven = MixConvSpec(expansion=1, kernels=3, project_groups=3).build(20, 20, 2)
    assert [c.in_channels for c in convs(uneven) if c.kernel_size != (1, 1)] == [8, 6, 6]
    assert uneven(torch.randn(1, 20, 7, 7)).shape == (1, 20, 4, 4)  # every kernel size keeps ceil(7 / 2)
    shuffled = MixConvSpec(expansion=1, shuffle=True).build(8, 8, 1).eval()
    zero_last_bn(shuffled)
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert shuffled(x).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]  # even channels, then odd
    plain = convs(MixConvSpec(expansion=1).build(8, 8, 1))  # expansion 1: no expansion conv (MixNet's first block)
    assert [(c.kernel_size, c.groups) for c in plain] == [((3, 3), 8), ((1, 1), 1)]


def test_ghost_modules_make_half_their_channels_cheaply():
    block = GhostSpec(expansion=6, kernel=5, se_ratio=4).build(52, 104, 2)
    shapes = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs(block)]
    assert shapes == [(52, 156, 1, 1, 1), (156, 156, 3, 1, 156),    # Ghost module to 312: 156 + 156 cheap
                      (312, 312, 5, 2, 312),                          # the stride-2 depthwise conv
                      (312, 52, 1, 1, 1), (52, 52, 3, 1, 52),         # linear Ghost module to 104
                      (52, 52, 5, 2, 52), (52, 104, 1, 1, 1)]         # shortcut: depthwise, then 1x1
    se = [(l.in_features, l.out_features) for l in block.modules() if isinstance(l, nn.Linear)]
    assert se == [(312, 80), (80, 312)]  # 312 / 4 = 78, rounded to a multiple of 4 as GhostNet does
    assert sum(isinstance(m, nn.PReLU) for m in block.modules()) == 3  # GhostFaceNetV1: the SE's too
    x = torch.randn(1, 52, 14, 14)
    assert block(x).shape == (1, 104, 7, 7)
    same = GhostSpec(expansion=3).build(32, 32, 1).eval()
    assert isinstance(same.shortcut, nn.Identity) and isinstance(same.depthwise, nn.Identity)
    zero_last_bn(same.project.primary)
    zero_last_bn(same.project.cheap)
    x = torch.randn(1, 32, 8, 8)
    assert torch.allclose(same(x), x)


def test_shufflev2_units_split_or_branch_then_shuffle():
    basic = ShuffleV2Spec().build(48, 48, 1).eval()
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs(basic)] == [(24, 24, 1), (24, 24, 24), (24, 24, 1)]
    zero_last_bn(basic.branch)
    x = torch.randn(1, 48, 7, 7)
    out = basic(x)
    assert torch.equal(out[:, 0::2], x[:, :24])  # the kept half, interleaved with the processed one
    assert torch.all(out[:, 1::2] == 0)          # the processed half: PReLU(0) after a zeroed BN
    down = ShuffleV2Spec(kernel=5).build(24, 48, 2)
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs(down)] == [
        (24, 24, 5, 2), (24, 24, 1, 1),                    # depthwise /2, then 1x1 to half the output
        (24, 24, 1, 1), (24, 24, 5, 2), (24, 24, 1, 1)]    # the other branch
    assert down(torch.randn(1, 24, 7, 7)).shape == (1, 48, 4, 4)
