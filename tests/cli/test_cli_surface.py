"""What a user meets at the command line's surface (issue 28): output that fits 80 columns or a pipe,
help that shows every option whole, data on stdout with progress on stderr, readable facts, files
written as asked and with the usual mode, and knobs that do not apply refused."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

import nasface
from nasface.arch.checkpoint import save_weights
from nasface.cli import main
from nasface.data.proxy import split_identities
from nasface.core.errors import NasfaceError
from nasface.search.config import SEARCH_OPTIONS
from nasface.arch.spec import dump_spec, spec_from_dict, spec_to_dict
from nasface.ui.facts import fact_lines, score_lines
from tests.factories import REPO, ONE_STAGE_NET

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(*args: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, **env})


def in_process(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["nasface", *args])
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = exited.code or 0
    out, err = capsys.readouterr()
    return code, out, err


# -- 80 columns, a terminal or a pipe ---------------------------------------------------------------
@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_presets_show_every_name_and_number_whole_at_80_columns(terminal):
    env = {"COLUMNS": "80", **({"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"} if terminal else {"NO_COLOR": "1"})}
    result = run("presets", **env)
    assert result.returncode == 0, result.stderr
    text = ANSI.sub("", result.stdout)
    assert "…" not in text
    for name in nasface.preset_names():
        assert re.search(rf"^{re.escape(name)}\s", text, re.MULTILINE), name
        assert f"{nasface.count(name)['lfr_flops']:,}" in text
    # the table itself fits; only the title may wrap
    assert max(len(line.rstrip()) for line in text.splitlines() if "nasface presets" not in line) <= 80


def test_search_help_shows_every_option_whole_with_its_default_at_80_columns():
    result = run("search", "--help", COLUMNS="80")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for option in SEARCH_OPTIONS:
        assert re.search(rf"{re.escape(option.flag)}\b", text), option.flag
    assert "nasface[dlib]" in text  # not taken for markup
    words = " ".join(text.split())
    assert "[default: 150]" in words and "[default: lfr-light]" in words
    assert "--progress" in words and "--output" not in words  # the former name still works, unlisted


def test_version():
    result = run("--version")
    from importlib.metadata import version

    assert result.returncode == 0 and result.stdout.strip() == f"nasface {version('nasface')}"


@pytest.mark.parametrize("args, code", [([], 2), (["latency"], 2), (["latency", "--help"], 0)],
                         ids=["bare", "bare-group", "group-help"])
def test_a_command_with_nothing_to_do_shows_its_help(args, code, monkeypatch, capsys):
    """Help, whole, as before usage errors became one line: exit 2 where no command was named (click's)."""
    found, out, err = in_process(args, monkeypatch, capsys)
    assert found == code and "Usage: " in out + err and "error:" not in out + err
    assert "[OPTIONS] COMMAND" in out + err and "Commands" in out + err  # the whole help, not one line of it


def test_ctrl_c_outside_a_commands_own_handling_exits_130_in_one_line(monkeypatch, capsys):
    import nasface.arch.model

    def interrupted_count(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nasface.arch.model, "count", interrupted_count)  # `count` has no on_interrupt of its own
    code, out, err = in_process(["count", "mobilefacenet"], monkeypatch, capsys)
    assert code == 130 and err.strip().splitlines() == ["interrupted: the command stopped where it was"]


def test_count_header_gives_the_specs_input_size(tmp_path, monkeypatch, capsys):
    path = tmp_path / "small64.yaml"
    path.write_text(yaml.safe_dump({**ONE_STAGE_NET, "input_size": 64}))
    code, out, _ = in_process(["count", str(path)], monkeypatch, capsys)
    assert code == 0 and "64x64 input" in out and "112x112" not in out
    assert f"{nasface.count(nasface.load_spec(path))['flops']:,}" in out


# -- data on stdout, progress on stderr, facts a person reads --------------------------------------
def test_score_json_is_the_only_thing_on_stdout_and_its_text_is_readable(tmp_path):
    spec = tmp_path / "small.yaml"
    spec.write_text(yaml.safe_dump(ONE_STAGE_NET))
    result = run("score", str(spec), "--data", "orl", "--proxy-steps", "1", "--proxy-batch", "8", "--resolution",
                 "32", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)  # nothing but the object
    assert "decoding faces" in result.stderr
    assert facts["status"] == "ok" and facts["tar_at_far"] is None  # ORL's 300 negative pairs: too few for 1e-3
    lines = dict(score_lines(facts))
    assert "not measured at FAR 0.001" in lines["TAR"] and "1,000" in lines["TAR"]
    text = " ".join(f"{label}: {value}" for label, value in score_lines(facts))
    assert "None" not in text and "{" not in text and f"{facts['accuracy']:.4f}" in text


def test_data_prints_lines_not_python_values(monkeypatch, capsys):
    code, out, _ = in_process(["data", "orl"], monkeypatch, capsys)
    assert code == 0
    assert "None" not in out and "[" not in out and "True" not in out
    assert "112x112 pixels" in out and "identities: 40" in out
    assert fact_lines({"pairs": None, "sample_decodes": False}) == [("sample decodes", "no")]


# -- files written as asked -------------------------------------------------------------------------
def test_spec_output_format_follows_the_extension(tmp_path, monkeypatch, capsys):
    for name, load in (("m.json", json.loads), ("m.yml", yaml.safe_load), ("m.YAML", yaml.safe_load)):
        code, _, err = in_process(["spec", "mobilefacenet", "-o", str(tmp_path / name)], monkeypatch, capsys)
        assert code == 0, err
        assert spec_from_dict(load((tmp_path / name).read_text())) == nasface.load_spec("mobilefacenet")


def test_checkpoints_get_the_mode_of_any_new_file(tmp_path):
    spec = spec_from_dict(ONE_STAGE_NET)
    previous = os.umask(0o022)
    try:
        path = save_weights(tmp_path / "model.safetensors", nasface.build_model(spec), spec)
        (tmp_path / "plain").write_text("x")
        assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        path = save_weights(tmp_path / "generation-1.safetensors", nasface.build_model(spec), spec)
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(previous)


# -- search's display option ----------------------------------------------------------------------
SMALL_SEARCH = ["search", "--data", "orl", "--teacher", "none", "--executor", "inline", "--no-baselines",
                "--proxy-steps", "2", "--proxy-batch", "8", "--resolution", "32", "--device", "cpu"]


# a space of small networks, so that one candidate trains in seconds
TINY_SPACE = """
name: tiny
stem: {width: [16], stride: [2], act: [prelu]}
head: {kind: [dw], dw: {stride: [2]}}
stages: {slots: 1, repeats: [1], width: [32], stride: [2], family: [bottleneck], bottleneck: {expansion: [1, 2]}}
embedding: {kind: [gap], size: [64], act: [prelu], gap: {width: [64]}}
"""


def test_search_progress_says_why_tar_at_far_is_not_measured(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_SPACE)
    result = run(*SMALL_SEARCH, "--study", "shown", "--studies-dir", str(tmp_path), "--trials", "1",
                 "--space", str(tmp_path / "tiny.yaml"), "--progress", "rich")
    assert result.returncode == 0, result.stderr
    assert "Pareto-optimal trials" in result.stdout
    # ORL's held-out pairs hold 300 negatives: FAR 1e-3 cannot be measured, and the table says why
    assert "TAR@FAR -: not measured at FAR 0.001" in " ".join(result.stdout.split())


def test_search_former_output_flag_still_works(tmp_path):
    result = run(*SMALL_SEARCH, "--study", "shown", "--studies-dir", str(tmp_path), "--trials", "0",
                 "--output", "jsonl")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all("event" in event for event in events)
    assert result.stderr.strip() == ""  # silently: scripts that read stderr keep working


# -- knobs that do not apply -----------------------------------------------------------------------
@pytest.mark.parametrize("part, knob, value", [("head", "group_size", 16), ("head", "factor", 2),
                                               ("head", "se_ratio", 0), ("embedding", "group_size", 16)])
def test_a_knob_the_kind_does_not_read_is_an_error_naming_it(part, knob, value):
    data = spec_to_dict(spec_from_dict(ONE_STAGE_NET))
    data[part][knob] = value
    with pytest.raises(NasfaceError, match=rf"spec\.{part}\.{knob}: does not apply to a (dw head|gdc embedding)"):
        spec_from_dict(data)


@pytest.mark.parametrize("preset", nasface.preset_names())
def test_written_specs_hold_only_the_knobs_their_kinds_read_and_keys_hold_every_field(preset):
    spec = nasface.load_spec(preset)
    written = yaml.safe_load(dump_spec(spec))
    for part in ("head", "embedding"):
        assert set(written[part]) == {f.name for f in dataclasses.fields(getattr(spec, part))} \
            - set(getattr(spec, part).unused_knobs())
    assert spec_from_dict(written) == spec
    # what studies, logs and caches key specs by: every field, as before (stored specs load as they were)
    every = spec_to_dict(spec)
    assert set(every["head"]) == {f.name for f in dataclasses.fields(spec.head)}
    assert set(every["embedding"]) == {f.name for f in dataclasses.fields(spec.embedding)}
    assert spec_from_dict(every) == spec
    assert json.loads(dump_spec(spec, "json", every_field=True)) == every


def test_mobilefacenet_prints_no_se_in_its_head(monkeypatch, capsys):
    code, out, _ = in_process(["spec", "mobilefacenet"], monkeypatch, capsys)
    head = yaml.safe_load(out)["head"]
    assert code == 0 and head == {"kind": "dw", "stride": 1, "act": "prelu"}


# -- wording ----------------------------------------------------------------------------------------
def test_too_many_identities_names_the_flags():
    with pytest.raises(NasfaceError, match="lower --train-identities / --val-identities "
                                           r"\(train_identities / val_identities in a study file\)"):
        split_identities(40, 100, 10, 0, "orl")


def _stored_specs(tree):
    if isinstance(tree, dict):
        if {"stem", "head", "stages", "embedding"} <= set(tree):
            yield tree
        for value in tree.values():
            yield from _stored_specs(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _stored_specs(value)


def test_stored_specs_still_load_and_key_the_same():
    """The specs the repository's logged measurements hold (every field, as written before knobs a kind does not
    read were refused) load, and give back the very dict their keys were computed from."""
    results = REPO / "benchmarks" / "results"
    found = 0
    for path in sorted(results.rglob("*.json*")):
        if not path.is_file():  # a running validation's claims folder (log.jsonl.claims)
            continue
        text = path.read_text()
        documents = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" \
            else [json.loads(text)]
        for stored in (spec for document in documents for spec in _stored_specs(document)):
            assert spec_to_dict(spec_from_dict(stored)) == stored
            found += 1
    assert found > 0
