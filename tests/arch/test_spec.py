"""Specs: lossless round trips, presets, and one clear error for every way a spec can be wrong."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from hypothesis import given, settings

import nasface
from nasface.core.errors import NasfaceError
from nasface.arch.spec import dump_spec, spec_from_dict, spec_to_dict
from tests.factories import random_specs

PRESETS = nasface.preset_names()


def test_required_presets_exist():
    for name in ("mobilefacenet", "vargfacenet", "seesaw-shuffle-facenet", "seesaw-share-facenet",
                 "dw-seesawfacenet", "mobiface", "iresnet50"):
        assert name in PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_and_embeds(preset):
    spec = nasface.load_spec(preset)
    model = nasface.build_model(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 112, 112))
    assert out.shape == (2, spec.embedding.size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_round_trip_through_yaml_and_json(preset, tmp_path):
    spec = nasface.load_spec(preset)
    for suffix in (".yaml", ".json"):
        path = nasface.save_spec(spec, tmp_path / f"{preset}{suffix}")
        assert nasface.load_spec(path) == spec
    assert spec_from_dict(yaml.safe_load(dump_spec(spec))) == spec
    assert spec_from_dict(json.loads(dump_spec(spec, "json"))) == spec


@settings(max_examples=100, deadline=None)
@given(spec=random_specs())
def test_random_specs_round_trip(spec):
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert spec_from_dict(yaml.safe_load(dump_spec(spec))) == spec


def mobilefacenet_dict() -> dict:
    return spec_to_dict(nasface.load_spec("mobilefacenet"))


def edit(change) -> dict:
    data = mobilefacenet_dict()
    change(data)
    return data


BAD_SPECS = [
    ("unknown family", lambda d: d["stages"][2].update(family="transformer"),
     r"stages\[2\]\.family: unknown block family 'transformer'"),
    ("width not divisible by S", lambda d: d["stages"].__setitem__(
        0, {"family": "varg", "repeats": 1, "width": 84, "stride": 2, "group_size": 8}),
     r"stages\[0\]\.width: 84 channels are not divisible by 8"),
    ("map collapses below the kernel", lambda d: d["stages"].append(
        {"family": "bottleneck", "repeats": 1, "width": 128, "stride": 2}),
     r"embedding\.kernel: the feature map collapses to 4x4, below the 7x7"),
    ("map larger than the kernel", lambda d: d["stages"][1].update(stride=1),
     r"embedding\.kernel: the final feature map is 14x14, larger than the 7x7"),
    ("unknown field", lambda d: d["stages"][0].update(expansoin=2),
     r"stages\[0\]\.expansoin: unknown field"),
    ("wrong type", lambda d: d["stages"][0].update(repeats="five"),
     r"stages\[0\]\.repeats: expected an integer, got 'five'"),
    ("bool is no integer", lambda d: d["stem"].update(width=True),
     r"stem\.width: expected an integer"),
    ("bad stride", lambda d: d["stages"][0].update(stride=3), r"stages\[0\]\.stride: must be 1 or 2"),
    ("negative width", lambda d: d["stages"][0].update(width=-8), r"stages\[0\]\.width: must be a positive"),
    ("unknown activation", lambda d: d["stem"].update(act="gelu"), r"stem\.act: unknown activation 'gelu'"),
    ("unknown head", lambda d: d["head"].update(kind="pool"), r"head\.kind: unknown head 'pool'"),
    ("unknown embedding", lambda d: d["embedding"].update(kind="attention"),
     r"embedding\.kind: unknown embedding 'attention'"),
    ("missing stages", lambda d: d.pop("stages"), r"stages: missing required field"),
    ("empty stages", lambda d: d.update(stages=[]), r"stages: expected a non-empty list"),
    ("seesaw split", lambda d: d["stages"].__setitem__(
        0, {"family": "seesaw", "repeats": 1, "width": 64, "stride": 2, "split": [1, 3], "variant": "mix"}),
     r"stages\[0\]\.variant: unknown Seesaw variant 'mix'"),
    ("flgc groups", lambda d: d["stages"].__setitem__(
        0, {"family": "flgc", "repeats": 1, "width": 64, "stride": 2, "groups": 5}),
     r"stages\[0\]\.groups: \d+ channels are not divisible by 5"),
    ("se ratio too big", lambda d: d["stages"][0].update(se_ratio=1000),
     r"stages\[0\]\.se_ratio: reduction 1000 leaves no channel"),
]


@pytest.mark.parametrize("label, change, message", BAD_SPECS, ids=[case[0] for case in BAD_SPECS])
def test_bad_specs_name_the_field_and_the_reason(label, change, message):
    with pytest.raises(NasfaceError, match=message) as caught:
        spec_from_dict(edit(change))
    assert "\n" not in str(caught.value)


def test_bad_files(tmp_path):
    with pytest.raises(NasfaceError, match="no such spec file"):
        nasface.load_spec(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nstages: [\n")
    with pytest.raises(NasfaceError, match=r"broken.yaml: malformed YAML at line \d+"):
        nasface.load_spec(broken)
    with pytest.raises(NasfaceError, match="unknown preset 'mobilefacenet2'"):
        nasface.load_spec("mobilefacenet2")
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(NasfaceError, match="malformed YAML"):
        nasface.load_spec(unsafe)
