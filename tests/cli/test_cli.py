"""The command line, run as a user runs it: a real subprocess, exit status, output, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import nasface


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_count_json_has_the_documented_keys():
    result = run("count", "vargfacenet", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for key in ("flops", "macs", "params", "weight_bytes", "activation_bytes", "convention"):
        assert key in figures
    assert figures["flops"] == 1_022_864_152 and figures["convention"] == "lfr"
    assert figures == {"spec": "vargfacenet", **nasface.count("vargfacenet")}


def test_count_macs_convention_and_table():
    result = run("count", "mobilefacenet", "--flops-convention", "macs", "--json")
    assert json.loads(result.stdout)["flops"] == nasface.count("mobilefacenet")["macs"]
    table = run("count", "mobilefacenet")
    assert table.returncode == 0
    assert "stage1" in table.stdout and "embedding" in table.stdout and "440,213,760" in table.stdout


def test_presets_lists_every_preset_with_costs():
    result = run("presets", "--json")
    assert result.returncode == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["name"] for row in rows] == nasface.preset_names()
    assert all(row["params"] > 0 and row["lfr_flops"] > row["macs"] for row in rows)


def test_spec_round_trips_through_the_cli(tmp_path):
    out = tmp_path / "m.yaml"
    assert run("spec", "seesaw-share-facenet", "-o", str(out)).returncode == 0
    assert nasface.load_spec(out) == nasface.load_spec("seesaw-share-facenet")
    again = run("count", str(out), "--json")
    assert json.loads(again.stdout)["macs"] == nasface.count("seesaw-share-facenet")["macs"]


def test_space_prints_knobs_and_writes_feasible_samples(tmp_path):
    result = run("space", "--budget-flops", "1G", "--budget-mem", "20MB", "--sample", "3", "--seed", "7",
                 "-o", str(tmp_path), "--estimate", "300")
    assert result.returncode == 0, result.stderr
    assert "stages.varg.group_size" in result.stdout and "within budget" in result.stdout
    written = sorted(tmp_path.glob("*.yaml"))
    assert len(written) == 3
    for path in written:
        figures = nasface.count(nasface.load_spec(path))
        assert figures["flops"] <= 1_000_000_000 and figures["weight_bytes"] <= 20_000_000
    again = tmp_path / "again"
    run("space", "--budget-flops", "1G", "--budget-mem", "20MB", "--sample", "3", "--seed", "7", "-o", str(again),
        "--estimate", "10")
    assert [p.read_text() for p in sorted(again.glob("*.yaml"))] == [p.read_text() for p in written]


def test_data_json_describes_a_source():
    facts = json.loads(run("data", "orl", "--json").stdout)
    assert facts["format"] == "orl" and facts["identities"] == 40 and facts["images"] == 400
    assert facts["image_size"] == [112, 112] and facts["sample_decodes"] is True
