"""The declarative search space: presets are points of it, sampling is valid and deterministic."""

from __future__ import annotations

import dataclasses
import itertools

import optuna
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import nasface
from nasface.arch.blocks import FAMILIES
from nasface.arch.blocks.base import BlockSpec, check_divisible, conv_bn, conv_bn_cost, cost_ordered, larger_is_cheaper
from nasface.arch.budget import Budgets
from nasface.core.errors import NasfaceError
from nasface.arch.space import (DEFAULT_SPACE, RandomChooser, cheapest_spec, feasible_sample, knob_summary,
                                load_space)

# The seed papers' networks that the default space makes; the other presets reproduce published networks
# with blocks, widths or activations it does not offer (and the teachers are no points either).
SEED_NETWORKS = ["dw-seesawfacenet", "dw-seesawfacenet-v1", "mobiface", "mobilefacenet", "seesaw-share-facenet",
                 "seesaw-shuffle-facenet", "vargfacenet"]


@pytest.fixture(scope="module")
def space():
    return load_space()


@pytest.mark.parametrize("preset", SEED_NETWORKS)
def test_every_seed_preset_is_a_point_of_the_default_space(space, preset):
    spec = nasface.load_spec(preset)
    params = space.params_of(spec)
    assert space.sample(optuna.trial.FixedTrial(params), name=preset) == spec


def test_the_wide_space_holds_the_default_one_and_the_other_families():
    """lfr-wide is lfr with more families: every seed network is a point of both, and it offers
    every registered family (the default space keeps its choices, so its draws stay the same)."""
    wide = load_space("lfr-wide")
    for preset in SEED_NETWORKS:
        spec = nasface.load_spec(preset)
        assert wide.sample(optuna.trial.FixedTrial(wide.params_of(spec)), name=preset) == spec
    default_families = set(yaml.safe_load(DEFAULT_SPACE.read_text())["stages"]["family"])
    wide_families = set(yaml.safe_load((DEFAULT_SPACE.parent / "lfr-wide.yaml").read_text())["stages"]["family"])
    assert default_families < wide_families and wide_families == set(FAMILIES) - {"ir"}


def test_teachers_are_not_points(space):
    with pytest.raises(NasfaceError, match="head.kind = 'none' is not among"):
        space.params_of(nasface.load_spec("iresnet50"))


def test_a_field_the_space_fixes_is_named(space):
    spec = nasface.load_spec("mobilefacenet")
    relu_head = dataclasses.replace(spec, head=dataclasses.replace(spec.head, act="relu"))
    with pytest.raises(NasfaceError, match="spec.head.act is 'relu', where the space makes 'prelu'"):
        space.params_of(relu_head)  # the head takes the stem's activation


def test_space_covers_the_five_design_knobs(space):
    knobs = dict(space.knobs())
    assert len(knobs["stages.varg.group_size"]) > 1            # VarG channels per group S
    assert len(knobs["stages.seesaw.split"]) > 1               # Seesaw uneven split
    assert knobs["stages.seesaw.variant"] == ["shuffle", "share"]
    assert len(knobs["stages.flgc.groups"]) > 1                # FLGC group counts
    assert knobs["stem.stride"] == [1, 2]                      # head stride
    assert set(knobs["embedding.kind"]) == {"gdc", "varg", "fc", "gap"}
    for knob in ("stages.family", "stages.repeats", "stages.width", "stages.bottleneck.expansion",
                 "stages.bottleneck.se_ratio", "stages.bottleneck.act", "embedding.size"):
        assert len(knobs[knob]) > 1


def test_space_size_counts_the_choices(space):
    one_slot = dataclasses.replace(space, slots=1)
    assert one_slot.size() < space.size()
    tiny = load_space_from_text("""
name: tiny
stem: {width: [16, 32], stride: [2], act: [prelu]}
head: {kind: [dw], dw: {stride: [1]}}
stages: {slots: 1, repeats: [0, 1], width: [32], stride: [2], family: [bottleneck],
         bottleneck: {expansion: [2, 4]}}
embedding: {kind: [gap], size: [128], act: [prelu], gap: {width: [64]}}
""")
    assert tiny.size() == 2 * 2  # stem width x expansion
    specs = {tiny.sample(RandomChooser(seed)) for seed in range(50)}
    assert len(specs) == 4


def load_space_from_text(text):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "space.yaml"
    path.write_text(text)
    return load_space(path)


class EveryPoint:
    """A trial that walks, run after run, through every setting of a space (``runs`` left to do)."""

    def __init__(self):
        self.runs = [{}]

    def next_run(self) -> None:
        self.plan = self.runs.pop()

    def suggest_categorical(self, name: str, choices: list):
        if name not in self.plan:
            self.runs += [{**self.plan, name: other} for other in choices[1:]]
            self.plan = {**self.plan, name: choices[0]}
        return self.plan[name]


def every_point_flops(space) -> tuple[list[int], int]:
    """The FLOPs of every valid point of ``space``, and how many settings were walked."""
    walker, flops, walked = EveryPoint(), [], 0
    while walker.runs:
        walker.next_run()
        walked += 1
        try:
            flops.append(nasface.count(space.sample(walker))["flops"])
        except NasfaceError:
            continue
    return flops, walked


def test_the_cheapest_point_from_the_cost_orders_is_the_cheapest_of_all(space):
    # every cheapest choice is listed last, so that no first choice is right by accident
    small = load_space_from_text("""
name: small
stem: {width: [32], stride: [1, 2], act: [prelu]}
head: {kind: [varg, dw], dw: {stride: [1, 2]}, varg: {stride: [2], se_ratio: [4]}}
stages: {slots: 1, repeats: [0, 2, 1], width: [64, 32], stride: [1, 2], family: [seesaw, varg, flgc, bottleneck],
         bottleneck: {se_ratio: [8, 4, 0]}, varg: {group_size: [16, 8]}, seesaw: {split: [[1, 3], [1, 1]]},
         flgc: {groups: [2, 4]}}
embedding: {kind: [varg, gdc, gap, fc], size: [128], gdc: {width: [256, 128]},
            varg: {width: [128, 64], group_size: [16, 8]}, gap: {width: [64, null]}, fc: {width: [64, null]}}
""")
    walked_in_all = 0
    # each head kind, block family and embedding kind apart, so that each one's cost orders are checked
    for head, family, embedding in itertools.product(small.head_kinds, small.families, small.embedding_kinds):
        part = dataclasses.replace(small, head_kinds=(head,), families=(family,), embedding_kinds=(embedding,))
        met = []

        def cheapest_choice(knob):
            met.append(knob)
            return knob.choices[0] if knob.selects else knob.cheapest()

        part.walk(cheapest_choice, "cheapest")
        ordered = [knob for knob in met if len(knob.choices) > 1 and not knob.selects]
        assert ordered and [knob.name for knob in ordered if knob.cheapest() != knob.choices[-1]] == []
        flops, walked = every_point_flops(part)
        walked_in_all += walked
        assert nasface.count(cheapest_spec(part))["flops"] == min(flops), (head, family, embedding)
    assert walked_in_all == small.size()
    # the default space: no seed network and no random point is cheaper
    cheapest = nasface.count(cheapest_spec(space))["flops"]
    points = feasible_sample(space, Budgets.parse(), 1000, seed=0, keep=200)["specs"]
    assert cheapest <= min(nasface.count(spec)["flops"] for spec in points)
    assert cheapest <= min(nasface.count(preset)["flops"] for preset in SEED_NETWORKS)


def test_the_knob_summary_names_exactly_the_declared_knobs(space):
    declared = {name for name, choices in space.knobs() if len(choices) > 1}
    summarised = set()
    for seed in range(300):
        chooser = RandomChooser(seed)
        try:
            space.sample(chooser)
        except NasfaceError:
            pass  # an invalid point's choices were made all the same
        summary = knob_summary(chooser.params)
        assert set(summary) <= declared
        summarised |= set(summary)
    assert summarised == declared
    # a seed network's choices, a stage knob's slot by slot
    summary = knob_summary(space.params_of(nasface.load_spec("mobilefacenet")))
    assert summary["stages.family"] == "/".join(["bottleneck"] * 5)
    assert summary["stages.repeats"] == "5/1/6/1/2/0" and summary["stages.width"] == "64/128/128/128/128"
    assert (summary["stem.stride"], summary["head.kind"], summary["embedding.kind"]) == (2, "dw", "gdc")


@dataclasses.dataclass(frozen=True)
class PlainSpec(BlockSpec):
    """A block family as a new file in nasface/arch/blocks/ would declare it: one 3x3 (group) conv, BN, act."""

    family = "plain"
    groups: int = cost_ordered(1, larger_is_cheaper)
    act: str = "prelu"

    def check(self, where, cin, cout, stride):
        check_divisible(f"{where}.groups", cin, self.groups, "a group convolution")
        check_divisible(f"{where}.groups", cout, self.groups, "a group convolution")

    def add_cost(self, counter, name, cout, stride):
        conv_bn_cost(counter, name, cout, 3, stride, groups=self.groups, act=self.act)

    def build(self, cin, cout, stride):
        return conv_bn(cin, cout, 3, stride, groups=self.groups, act=self.act)


def test_a_new_family_needs_its_file_and_the_space_yaml_only(monkeypatch):
    from nasface.arch.model import deploy, deployed_cost, learnt_structure

    monkeypatch.setitem(FAMILIES, "plain", PlainSpec)  # the one line blocks/__init__.py would gain
    plain = load_space_from_text("""
name: plain
stem: {width: [16, 32], stride: [2], act: [prelu]}
head: {kind: [dw], dw: {stride: [1, 2]}}
stages: {slots: 2, repeats: [0, 1, 2], width: [32, 64], stride: [1, 2], family: [plain],
         plain: {groups: [1, 2, 4], act: [prelu, relu]}}
embedding: {kind: [gdc], size: [128], gdc: {width: [128]}}
""")
    assert ("stages.plain.groups", [1, 2, 4]) in plain.knobs()
    for seed in range(20):
        chooser = RandomChooser(seed)
        spec = plain.sample(chooser)
        assert nasface.spec_from_dict(nasface.spec_to_dict(spec)) == spec
        assert plain.sample(optuna.trial.FixedTrial(plain.params_of(spec))) == spec
        assert set(knob_summary(chooser.params)) <= {name for name, _ in plain.knobs()}
        model = nasface.build_model(spec)
        assert nasface.count(spec)["params"] == sum(p.numel() for p in model.parameters())
        assert learnt_structure(model) == {} and deploy(model).state_dict().keys() == model.state_dict().keys()
        assert deployed_cost(spec, {"learnt_structure": {}}, "lfr")["flops"] == nasface.count(spec)["flops"]
    cheapest = cheapest_spec(plain)
    assert {stage.block.groups for stage in cheapest.stages} == {4}  # its declared cost order


BUNDLED_SPACES = ("lfr", "lfr-wide")


@pytest.mark.parametrize("name", BUNDLED_SPACES)
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_samples_are_valid_or_clearly_refused(name, seed):
    space = load_space(name)
    chooser = RandomChooser(seed)
    try:
        spec = space.sample(chooser)
    except NasfaceError as err:
        assert "\n" not in str(err)
        return
    again = space.sample(optuna.trial.FixedTrial(space.params_of(spec)))
    assert again == spec
    assert nasface.count(spec)["params"] > 0


@pytest.mark.parametrize("name", BUNDLED_SPACES)
def test_most_random_samples_are_valid(name):
    space = load_space(name)
    valid = 0
    for seed in range(300):
        try:
            space.sample(RandomChooser(seed))
            valid += 1
        except NasfaceError:
            pass
    assert valid / 300 > 0.9


BAD_SPACES = [
    (lambda d: d["stages"].update(family=["bottleneck", "mamba"]), "unknown block family 'mamba'"),
    (lambda d: d["stages"]["varg"].update(group_size=[]), r"stages.varg.group_size: expected a non-empty list"),
    (lambda d: d["stem"].update(width="wide"), r"stem.width: expected a non-empty list"),
    (lambda d: d["stages"]["seesaw"].update(colour=["red"]), r"stages.seesaw.colour: unknown field"),
    (lambda d: d["stages"].update(slots=0), "stages.slots"),
    (lambda d: d["embedding"].update(kind=[]), "embedding.kind: expected a non-empty list"),
    (lambda d: d["stages"]["bottleneck"].update(expansion=["two"]), r"expansion\[0\]: expected a number"),
]


@pytest.mark.parametrize("change, message", BAD_SPACES)
def test_bad_spaces_get_one_clear_error(change, message, tmp_path):
    data = yaml.safe_load(DEFAULT_SPACE.read_text())
    change(data)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(NasfaceError, match=message) as caught:
        load_space(path)
    assert "\n" not in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**9))
def test_fill_budget_widens_within_the_budgets(seed):
    from nasface.arch.space import fill_budget

    space = load_space()
    budgets = Budgets.parse(flops="1G", mem="20MB")
    try:
        spec = space.sample(RandomChooser(seed))
    except NasfaceError:
        return
    before = nasface.count(spec)
    filled, factor = fill_budget(spec, budgets)
    after = nasface.count(filled)
    if not budgets.fits(before):
        assert filled == spec and factor == 1.0
        return
    assert budgets.fits(after)
    assert after["flops"] >= before["flops"] and factor >= 1.0
    assert [s.width for s in filled.stages] >= [s.width for s in spec.stages] or factor == 1.0
