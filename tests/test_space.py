"""The declarative search space: presets are points of it, sampling is valid and deterministic."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import nasface
from nasface.errors import NasfaceError
from nasface.space import DEFAULT_SPACE, RandomChooser, load_space

SEED_NETWORKS = [p for p in nasface.preset_names() if not p.startswith("iresnet")]


@pytest.fixture(scope="module")
def space():
    return load_space()


@pytest.mark.parametrize("preset", SEED_NETWORKS)
def test_every_seed_preset_is_a_point_of_the_default_space(space, preset):
    spec = nasface.load_spec(preset)
    params = space.params_of(spec)
    assert space.sample(optuna.trial.FixedTrial(params), name=preset) == spec


def test_teachers_are_not_points(space):
    with pytest.raises(NasfaceError, match="head.kind = 'none' is not among"):
        space.params_of(nasface.load_spec("iresnet50"))


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


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_samples_are_valid_or_clearly_refused(seed):
    space = load_space()
    chooser = RandomChooser(seed)
    try:
        spec = space.sample(chooser)
    except NasfaceError as err:
        assert "\n" not in str(err)
        return
    again = space.sample(optuna.trial.FixedTrial(space.params_of(spec)))
    assert again == spec
    assert nasface.count(spec)["params"] > 0


def test_most_random_samples_are_valid(space):
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
    from nasface.budget import Budgets
    from nasface.space import fill_budget

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
