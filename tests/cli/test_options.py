"""One option table drives ``search``, ``fidelity``, ``validate``, ``score`` and ``train``: every entry a
command declares is in its --help with its default, and an option means the same in every command."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import click
import pytest
import typer
import yaml
from hypothesis import given, strategies as st

import nasface
from nasface.arch.checkpoint import save_weights
from nasface.cli.base import app
from nasface.cli.options import SCORE_OPTIONS, TRAIN_OPTIONS
from nasface.cli.search import FIDELITY_SEARCH_OPTIONS, VALIDATE_SEARCH_OPTIONS
from nasface.core.errors import NasfaceError
from nasface.core.options import resolved
from nasface.search.config import SEARCH_OPTIONS
from nasface.training.recipe import Recipe
from nasface.training.settings import PROXY_OPTIONS, ProxyBudget
from tests.factories import ONE_STAGE_NET, TINY_NET, run, write_recipe

TABLES = {
    "search": SEARCH_OPTIONS,
    "fidelity": tuple(o for o in SEARCH_OPTIONS if o.name in FIDELITY_SEARCH_OPTIONS),
    "validate": tuple(o for o in SEARCH_OPTIONS if o.name in VALIDATE_SEARCH_OPTIONS),
    "score": SCORE_OPTIONS,
    "train": TRAIN_OPTIONS,
}


def help_text(command: str) -> str:
    """The command's --help as typer draws it, unwrapped (one line per option)."""
    group = typer.main.get_command(app)
    cmd = group.commands[command]
    context = click.Context(cmd, info_name=command, parent=click.Context(group, info_name="nasface"),
                            terminal_width=10_000, max_content_width=10_000)
    return cmd.get_help(context)


def shown(option) -> str | None:
    if option.shown_default is not None:
        return option.shown_default
    if option.default is None or (option.hint is bool and "/" not in "".join(option.flags) and option.flags):
        return None
    return ",".join(option.default) if isinstance(option.default, tuple) else str(option.default)


@pytest.mark.parametrize("command", TABLES)
def test_every_table_entry_is_in_the_help_with_its_help_and_default(command):
    text = help_text(command)
    for option in TABLES[command]:
        (line,) = [" ".join(entry.split()) for entry in re.split(r"\n(?=  -)", text)
                   if re.match(rf"\s*(?:-\w, )?{re.escape(option.flag)}(?![\w-])", entry)]
        default = shown(option)
        described = option.help + ("" if default is None else f" [default: {default}]")
        assert line.rstrip().endswith(described), (line, described)
        for choice in option.choices:
            assert choice in line


def test_an_option_is_one_declaration_in_every_command():
    by_name: dict[str, dict[str, object]] = {}
    for command, table in TABLES.items():
        names = [option.name for option in table]
        assert len(names) == len(set(names)), command
        for option in table:
            by_name.setdefault(option.name, {})[command] = option
    for name, declared in by_name.items():
        # the same type, help, flags and choices wherever it is taken
        assert len({(o.hint, o.help, o.flags, o.choices) for o in declared.values()}) == 1, name
    differing = {(command, name) for name, declared in by_name.items() for command, option in declared.items()
                 if command != "search" and "search" in declared
                 and (option.default, option.shown_default) != (declared["search"].default,
                                                                declared["search"].shown_default)}
    # the only defaults that differ from the search's: score trains no teacher unless asked, and train
    # takes what its recipe says
    assert differing == {("score", "teacher"), *(("train", name) for name in
                                                 ("data", "teacher", "teacher_spec", "seed", "device"))}
    assert all(option.default is None and option.shown_default == "the recipe's"
               for command, name in differing if command == "train" for option in [by_name[name][command]])
    assert by_name["teacher"]["score"].default == "none"
    # cache_dir is score's and train's only: train's default is a folder beside its output
    assert by_name["cache_dir"]["score"].default == Path("studies") / ".cache"
    assert by_name["cache_dir"]["train"].default is None


def test_score_and_train_take_what_their_api_reads():
    recipe_fields = {field.name for field in dataclasses.fields(Recipe)}
    train = {option.name for option in TRAIN_OPTIONS}
    assert train - recipe_fields == {"output", "resume", "cache_dir"}  # prepare_training's own arguments
    score = {option.name for option in SCORE_OPTIONS}
    assert score - set(PROXY_OPTIONS) == {"data", "val_bin", "teacher", "teacher_spec", "cache_dir"}


def test_score_defaults_are_the_search_proxy():
    """Given nothing, score trains the proxy a search trains (ProxyBudget's defaults)."""
    assert ProxyBudget.from_options(resolved({}, SCORE_OPTIONS)) == ProxyBudget()


@given(steps=st.integers(0, 10_000), batch=st.integers(2, 512), resolution=st.integers(16, 112),
       device=st.sampled_from(["auto", "cpu", "cuda"]), margin=st.sampled_from(["arcface", "cosface", "sphereface"]))
def test_score_flags_reach_the_proxy(steps, batch, resolution, device, margin):
    values = resolved({"proxy_steps": steps, "proxy_batch": batch, "resolution": resolution, "device": device,
                       "margin": margin, "seed": None}, SCORE_OPTIONS)
    budget = ProxyBudget.from_options(values)
    assert (budget.steps, budget.batch_size, budget.resolution, budget.device, budget.margin, budget.seed) == \
        (steps, batch, resolution, device, margin, 0)


def test_train_repeatable_and_unset_options():
    values = resolved({"val_bins": ["a.bin", "b.bin"], "batch_size": None, "resume": False, "output": "out"},
                      TRAIN_OPTIONS)
    assert values["val_bins"] == ("a.bin", "b.bin") and values["output"] == Path("out")
    assert values["batch_size"] is None and values["device"] is None  # the recipe's
    assert resolved({"val_bins": []}, TRAIN_OPTIONS)["val_bins"] is None  # given no time: the recipe's
    with pytest.raises(NasfaceError, match="--batch: expected an integer"):
        resolved({"batch_size": "many"}, TRAIN_OPTIONS)


def test_train_flags_reach_the_recipe_through_the_real_cli(tmp_path):
    recipe = write_recipe(tmp_path)
    code, _, err = run("train", str(recipe), "--batch", "1")  # --batch is the recipe's batch_size
    assert code == 2 and "recipe.batch_size: must be at least 2, got 1" in err
    code, _, err = run("train", str(recipe), "--val-bin", str(tmp_path / "one.bin"), "--val-bin",
                       str(tmp_path / "two.bin"))  # repeatable: the first missing file is named
    assert code == 2 and "one.bin" in err and err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["recipe.yaml", "tiny.yaml"]  # nothing written


def test_library_messages_reach_stderr_and_leave_scores_json_alone(tmp_path):
    """The teacher's messages (nasface.training.teacher's logger) go through the command line's one
    handler to stderr; stdout holds the JSON object alone."""
    teacher = save_weights(tmp_path / "teacher.safetensors", nasface.build_model(TINY_NET), TINY_NET)
    spec = tmp_path / "small.yaml"
    spec.write_text(yaml.safe_dump(ONE_STAGE_NET))
    code, out, err = run("score", str(spec), "--data", "orl", "--teacher", str(teacher), "--proxy-steps", "1",
                         "--proxy-batch", "8", "--resolution", "32", "--cache-dir", str(tmp_path / "cache"),
                         "--device", "cpu", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "ok"  # nothing but the object
    assert f"embedding the proxy images with the teacher {teacher}" in err
    assert f"teacher {teacher} verifies" in err and "verifies" not in out


def test_library_messages_are_events_of_a_jsonl_search(tmp_path):
    """A search shows the library's messages in its own display: in jsonl, a "log" event on stdout."""
    teacher = save_weights(tmp_path / "teacher.safetensors", nasface.build_model(TINY_NET), TINY_NET)
    code, out, err = run("search", "--data", "orl", "--teacher", str(teacher), "--executor", "inline",
                         "--no-baselines", "--proxy-steps", "2", "--proxy-batch", "8", "--resolution", "32",
                         "--device", "cpu", "--trials", "0", "--studies-dir", str(tmp_path / "studies"),
                         "--progress", "jsonl")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    messages = [event["message"] for event in events if event["event"] == "log"]
    assert any(message.startswith(f"teacher {teacher} verifies") for message in messages), messages
    assert "verifies" not in err
