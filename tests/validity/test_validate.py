"""Published full-training results as data, and ``nasface validate``: the table against its own
invariants, the pair and tau counting (property tests), the analysis on hand-made logs, and the
command end to end with real training, killed in the middle and continued."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from nasface.cli import main
from nasface.core.errors import NasfaceError
from nasface.ui.progress import Reporter
from nasface.ui.study_page import write_report
from nasface.search import config_from_options, run_search
from nasface.arch.spec import preset_names
from nasface.validity.pairs import PairCount, count_pairs, pooled_tau, similar_in_size
from nasface.validity.published import METRICS, SATURATED, TIE_POINTS, default_table_path, load_published
from nasface.ui.validity_page import summary_line, write_page
from nasface.validity.validate import (Buildable, ValidateSettings, analyse, check_settings, measured_seed_noise,
                                       measured_validity, run_validate)
from tests.killing import REPO, killed_then_finished
from tests.factories import TINY_TABLE, TINY_VALIDATE, TINY_VALIDATE_ARGS, tiny_published_table

# Three presets trained for real at 32 px: two groups, one with a published tie and a network nasface cannot build
# -- the published table ---------------------------------------------------------------------------
def test_the_published_table_holds_its_own_invariants():
    table = load_published()
    presets = set(preset_names())
    assert len(table.groups) >= 8 and len({g.id for g in table.groups}) == len(table.groups)
    for group in table.groups:
        assert group.networks and group.paper and group.table and group.training_set and group.recipe
        names = [n.name for n in group.networks]
        assert len(names) == len(set(names)), group.id  # no network twice in a group
        # the score averages the hard benchmarks every network reports; LFW only where nothing else is shared
        assert group.score_metrics and set(group.score_metrics) <= set(METRICS)
        assert SATURATED not in group.score_metrics or group.score_metrics == (SATURATED,)
        for network in group.networks:
            assert network.preset is None or network.preset in presets, (group.id, network.preset)
            assert network.planned_preset is None or network.preset is None  # planned only until it exists
            assert all(m.name in METRICS and 0 < m.value <= 100 and m.paper == group.paper and m.table
                       for m in network.metrics)
            assert 0 < group.score(network) <= 100  # every network has a score
    # the seed papers' comparable groups and at least two multi-size families
    ids = {g.id for g in table.groups}
    assert {"seesawfacenets", "vargfacenet-from-scratch", "mobiface", "margindistillation"} <= ids
    assert len(ids & {"mixfacenets", "ghostfacenetv1", "edgeface", "facex-zoo"}) >= 2


def test_the_published_ties_are_those_of_the_rule():
    """Seesaw's five buildable networks (the issue's ladder of four and DW-SeesawFaceNet V1) make 10
    counted pairs, none closer than 0.3 points; MobiFace's
    MobileFaceNet and MobiFace differ by 0.19 points of MegaFace: a tie, not counted."""
    table = load_published()
    seesaw = table.group("seesawfacenets")
    ladder = [n for n in seesaw.networks if n.preset]
    scores = [seesaw.score(n) for n in ladder]
    assert len(ladder) == 5 and count_pairs(scores, scores) == PairCount(10, 10.0, 0)
    mobiface = table.group("mobiface")
    built = [n for n in mobiface.networks if n.preset]
    gap = abs(mobiface.score(built[0]) - mobiface.score(built[1]))
    assert gap < TIE_POINTS and count_pairs([mobiface.score(n) for n in built], [0, 1]).ties == 1
    # each group's published ties, counted by the rule, are the pairs closer than 0.3 points
    for group in table.groups:
        scores = [group.score(n) for n in group.networks]
        close = sum(abs(a - b) < TIE_POINTS - 1e-9 for a, b in combinations(scores, 2))
        assert count_pairs(scores, scores).ties == close


BAD_TABLES = {
    "unknown-metric": ("networks[0].metrics.vibes: unknown benchmark", lambda t: t["networks"][0]["metrics"].update(vibes=1)),
    "twice": ("networks[1].name: 'MFN' appears twice", lambda t: t["networks"][1].update(name="MFN")),
    "no-preset": ("networks[0].preset: required", lambda t: t["networks"][0].pop("preset")),
    "percent": ("networks[0].metrics.lfw: a percentage in (0, 100]", lambda t: t["networks"][0]["metrics"].update(lfw=0.99e3)),
    "no-paper": ("groups[0].paper: a non-empty text", lambda t: t.pop("paper")),
    "flops": ("networks[0].flops '2 GFLOPs': not a quantity", lambda t: t["networks"][0].update(flops="2 GFLOPs")),
    "no-shared-metric": ("no metric is reported by every network", lambda t: t["networks"][0].update(metrics={"ijb_c": 90.0})),
    "extra-field": ("networks[0].colour: unknown field", lambda t: t["networks"][0].update(colour="red")),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_a_bad_published_table_is_one_line_naming_the_field(case, tmp_path):
    words, edit = BAD_TABLES[case]
    table = json.loads(json.dumps(TINY_TABLE))
    edit(table["groups"][0])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(NasfaceError) as raised:
        load_published(path)
    assert words in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("args, words", [
    (["--seeds", "0"], "--seeds must be 1 or more"),
    (["--published", "{in}/missing.yaml"], "no such published results file"),
    (["--published", "{in}/unknown-preset.yaml"], "preset: unknown preset 'mobilefacenet-x'"),
    (["--data", "no/such/folder"], "data source 'no/such/folder' not found"),
])
def test_bad_validate_input_is_one_line_exit_2_and_writes_nothing(args, words, tmp_path, monkeypatch, capsys):
    inputs, work = tmp_path / "in", tmp_path / "work"
    inputs.mkdir()
    work.mkdir()
    table = json.loads(json.dumps(TINY_TABLE))
    table["groups"][0]["networks"][0]["preset"] = "mobilefacenet-x"
    (inputs / "unknown-preset.yaml").write_text(yaml.safe_dump(table))
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["nasface", "validate", *TINY_VALIDATE_ARGS,
                                      *(a.replace("{in}", str(inputs)) for a in args)])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert not list(work.iterdir())  # nothing written


TREES = st.recursive(st.none() | st.booleans() | st.integers(-5, 200) | st.floats() | st.text(max_size=6),
                     lambda children: st.lists(children, max_size=3)
                     | st.dictionaries(st.sampled_from(["id", "name", "preset", "metrics", "lfw", "flops", "networks",
                                                        "verified", "paper", "x"]), children, max_size=4),
                     max_leaves=12)


@hypothesis_settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(["id", "paper", "verified", "networks", "notes"]),
       network_field=st.sampled_from(["name", "preset", "flops", "params", "metrics", "table"]), value=TREES)
def test_any_edit_of_a_table_loads_or_is_one_nasface_error(tmp_path_factory, field, network_field, value):
    table = json.loads(json.dumps(TINY_TABLE))
    table["groups"][0][field] = value if field != "networks" else table["groups"][0][field]
    table["groups"][0]["networks"][1][network_field] = value
    path = tmp_path_factory.mktemp("t") / "t.yaml"
    path.write_text(yaml.safe_dump(table))
    try:
        loaded = load_published(path)
    except NasfaceError as err:
        assert "\n" not in str(err)
    else:
        assert all(0 < g.score(n) <= 100 for g in loaded.groups for n in g.networks)


# -- counting pairs ----------------------------------------------------------------------------------
SCORES = st.lists(st.floats(80, 100, allow_nan=False).map(lambda v: round(v, 2)), min_size=2, max_size=9)


@hypothesis_settings(max_examples=200, deadline=None)
@given(data=st.data(), published=SCORES)
def test_pair_counting_properties(data, published):
    n = len(published)
    predicted = data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))  # small range: ties happen
    pairs = count_pairs(published, predicted)
    assert pairs.counted + pairs.ties == n * (n - 1) // 2
    # a pair is counted exactly when the published scores are 0.3 points apart or more
    assert pairs.counted == sum(abs(a - b) >= TIE_POINTS - 1e-9 for a, b in combinations(published, 2))
    # reversing the predictor orders the rest of the counted pairs (its own ties count a half either way)
    assert pairs.ordered + count_pairs(published, [-p for p in predicted]).ordered == pytest.approx(pairs.counted)
    # the published order itself orders them all; a constant predictor half of them
    assert count_pairs(published, published).ordered == pairs.counted
    assert count_pairs(published, [1] * n).ordered == pytest.approx(pairs.counted / 2)
    # the networks' order, and a strictly increasing transform of the predictor, change nothing
    order = data.draw(st.permutations(range(n)))
    assert count_pairs([published[i] for i in order], [predicted[i] for i in order]) == pairs
    assert count_pairs(published, [np.exp(p) for p in predicted]) == pairs
    # shifting every published score moves no pair across the tie line
    assert count_pairs([p + 0.5 for p in published], predicted).counted == pairs.counted
    # any split of the pairs (here: similar in size or not) counts them all once between its two sides
    flops = data.draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    similar = similar_in_size(flops, 1.5)
    assert count_pairs(published, predicted, among=similar) + count_pairs(published, predicted, among=~similar) == pairs
    # similarity is a matter of ratios: scaling every network's FLOPs changes no pair's side
    assert (similar_in_size([7 * f for f in flops], 1.5) == similar).all()
    assert similar_in_size(flops, 1.0).sum() == sum(a == b for a, b in combinations(flops, 2))


@hypothesis_settings(max_examples=150, deadline=None)
@given(data=st.data(), first=SCORES, second=SCORES)
def test_pooled_tau_is_tau_b_within_one_group_and_pools_pairs_across_groups(data, first, second):
    a = data.draw(st.lists(st.integers(0, 4), min_size=len(first), max_size=len(first)))
    b = data.draw(st.lists(st.integers(0, 4), min_size=len(second), max_size=len(second)))
    # on a grid of half points every published gap is a tie (0) or counted (>= 0.5): scipy's tau-b
    grid = [round(2 * p) / 2 for p in first]
    tau = pooled_tau([(grid, a)])
    expected = kendalltau(grid, a).statistic
    assert (tau is None) == bool(np.isnan(expected)) and (tau is None or tau == pytest.approx(expected))
    # published scores closer than 0.3 points are tied for tau as for the pair counts: nudging them changes nothing
    nudged = [p + 0.1 * (k % 2) for k, p in enumerate(grid)]
    assert pooled_tau([(nudged, a)]) == tau
    # pooling never compares across groups: an offset between the groups changes nothing
    pooled = pooled_tau([(first, a), (second, b)])
    assert pooled == pooled_tau([(first, [v + 100 for v in a]), ([s - 50 for s in second], b)])
    if pooled is not None:
        assert -1 - 1e-12 <= pooled <= 1 + 1e-12
    other = [round(2 * p) / 2 for p in second]
    assert pooled_tau([(grid, grid), (other, other)]) in (None, pytest.approx(1.0))


# -- the analysis on hand-made logs ----------------------------------------------------------------
def _run(preset: str, seed: int, accuracy: float | None) -> dict:
    result = {"status": "ok", "accuracy": accuracy} if accuracy is not None else {"status": "failed", "reason": "nan"}
    return {"preset": preset, "seed": seed, "result": result}


def test_the_analysis_by_hand(tmp_path):
    table = load_published(tiny_published_table(tmp_path))
    networks = [Buildable("seesaw-share-facenet", None, 289, 137, None),
                Buildable("seesaw-shuffle-facenet", None, 289, 137, None),
                Buildable("mobilefacenet", None, 440, 120, None)]
    accuracies = {"seesaw-share-facenet": (0.90, 0.92), "seesaw-shuffle-facenet": (0.86, 0.86),
                  "mobilefacenet": (0.88, 0.84)}
    runs = {(p, s): _run(p, s, accuracies[p][s]) for p in accuracies for s in (0, 1)}
    report = analyse(table, networks, [0, 1], runs)
    ladder, tie = report["groups"]
    # published (mean of CFP-FP and AgeDB-30): MFN 93.78 < shuffle 94.165 < share 94.755; the big net is not built
    assert ladder["trained"] == 3 and ladder["size"] == 4 and ladder["score_metrics"] == ["cfp_fp", "agedb_30"]
    # proxy means: share 0.91 > MFN 0.86 = shuffle 0.86 -> share-MFN and share-shuffle right, MFN-shuffle a tie (half)
    assert (ladder["proxy"]["counted"], ladder["proxy"]["ordered"]) == (3, 2.5)
    # FLOPs alone: MFN largest, so both of its pairs wrong; share and shuffle the same FLOPs: a half
    assert ladder["flops"]["ordered"] == 0.5
    # parameters alone: MFN fewest -> right on both its pairs; share = shuffle: a half
    assert ladder["params"]["ordered"] == 2.5
    assert ladder["proxy"]["tau"] == pytest.approx(kendalltau([93.78, 94.755, 94.165], [0.86, 0.91, 0.86]).statistic)
    # seed by seed: seed 0 puts MFN (0.88) above shuffle (0.86), against the table -> 2 of 3; seed 1 MFN
    # (0.84) below shuffle -> 3 of 3
    assert ladder["per_seed"] == {"0": {"counted": 3, "ordered": 2.0, "ties": 0, "share": 2 / 3},
                                  "1": {"counted": 3, "ordered": 3.0, "ties": 0, "share": 1.0}}
    mfn = next(n for n in ladder["networks"] if n["preset"] == "mobilefacenet")
    assert mfn["seed_std"] == pytest.approx(100 * np.std([0.88, 0.84], ddof=1))
    assert ladder["largest_above_smallest"] is False  # MFN (440) below the smaller share (289)
    # of similar size (within 1.5x in FLOPs): share and shuffle alone (MFN is 1.52x them); the proxy puts
    # share above, as published; FLOPs and parameters tie them (a half each)
    assert {name: (row["counted"], row["ordered"]) for name, row in ladder["similar_size"].items()} == {
        "proxy": (1, 1.0), "flops": (1, 0.5), "params": (1, 0.5)}
    # the table's own printed FLOPs over all four of the ladder (the big one too): MFN's two pairs wrong,
    # share-shuffle a half, the big one's three right; the tie group prints no FLOPs
    assert ladder["printed_flops"] == {"counted": 6, "ordered": 3.5, "ties": 0, "share": 3.5 / 6, "networks": 4,
                                       "tau": pytest.approx(kendalltau([93.78, 94.755, 94.165, 96.955],
                                                                       [221, 146, 146, 514]).statistic)}
    assert report["groups"][1]["printed_flops"] is None and report["overall"]["printed_flops"]["ordered"] == 3.5
    # the second group is a published tie (90.71 vs 90.9): nothing counted, and no tau
    assert (tie["proxy"]["counted"], tie["proxy"]["ties"], tie["proxy"]["tau"]) == (0, 1, None)
    overall = report["overall"]
    assert (overall["proxy"]["counted"], overall["proxy"]["ordered"]) == (3, 2.5)
    assert overall["flops"]["ordered"] == 0.5 and overall["params"]["ordered"] == 2.5
    assert overall["proxy"]["tau"] == pytest.approx(pooled_tau([([93.78, 94.755, 94.165], [0.86, 0.91, 0.86]),
                                                                 ([90.71, 90.9], [0.86, 0.86])]))
    assert overall["seed_noise"]["per_seed"]["0"]["ordered"] == 2.0
    assert overall["similar_size"]["proxy"]["ordered"] == 1.0 and overall["similar_size"]["flops_ratio"] == 1.5
    assert "within 1.5x in FLOPs (where size cannot decide): proxy score 1 of 1" in summary_line(report)
    assert overall["largest_not_above_smallest"] == ["ladder", "tie"]  # in "tie" MFN only equals shuffle
    # a failed run, and a network with one seed only: the failure is named, the network kept at its one seed
    runs[("mobilefacenet", 1)] = _run("mobilefacenet", 1, None)
    runs[("seesaw-shuffle-facenet", 1)] = None
    partial = analyse(table, networks, [0, 1], runs)
    assert partial["failed"] == {"mobilefacenet seed 1": "nan"} and partial["runs_logged"] == 5
    mfn = next(n for n in partial["groups"][0]["networks"] if n["preset"] == "mobilefacenet")
    assert mfn["proxy"] == 0.88 and mfn["seed_std"] is None
    assert "1" not in partial["groups"][0]["per_seed"]  # only share has seed 1: no pair to count


def test_the_analysis_by_tar_reads_each_run_s_tar(tmp_path):
    # Judged by TAR at the low FAR instead of accuracy: the same runs, ranked by the other number; a run
    # whose TAR could not be measured counts as not measured, not as zero.
    table = load_published(tiny_published_table(tmp_path))
    networks = [Buildable("seesaw-share-facenet", None, 289, 137, None), Buildable("mobilefacenet", None, 440, 120, None),
                Buildable("seesaw-shuffle-facenet", None, 289, 137, None)]
    tar = {"seesaw-share-facenet": 0.30, "mobilefacenet": 0.10, "seesaw-shuffle-facenet": None}
    runs = {(p, 0): {"preset": p, "seed": 0, "result": {"status": "ok", "accuracy": 0.9 - (p == "mobilefacenet") * 0.1
                                                         + (p == "seesaw-share-facenet") * 0.05, "tar_at_far": t}}
            for p, t in tar.items()}
    by_accuracy, by_tar = analyse(table, networks, [0], runs), analyse(table, networks, [0], runs, "tar_at_far")
    assert by_tar["score"] == "tar_at_far" and by_accuracy["score"] == "accuracy"
    ladder = by_tar["groups"][0]
    assert ladder["trained"] == 2 and [n["proxy"] for n in ladder["networks"] if n["proxy"] is not None] == [0.10, 0.30]
    assert by_accuracy["groups"][0]["trained"] == 3
    with pytest.raises(NasfaceError, match="--score must be one of accuracy, tar_at_far"):
        check_settings(ValidateSettings(search=config_from_options(TINY_VALIDATE), score="auc"))


# -- end to end, with real training --------------------------------------------------------------
def test_validate_end_to_end_then_analyse_only_and_the_report_quotes_it(tmp_path):
    settings = ValidateSettings(search=config_from_options(TINY_VALIDATE), seeds=2, published=str(tiny_published_table(tmp_path)))
    out = tmp_path / "v"
    report = run_validate(settings, out, write_page=write_page)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and len({r["key"] for r in rows}) == 6  # 3 presets x 2 seeds, each once
    assert {(r["preset"], r["seed"]) for r in rows} == {(p, s) for p in ("mobilefacenet", "seesaw-share-facenet",
                                                                           "seesaw-shuffle-facenet") for s in (0, 1)}
    assert [r["seed"] for r in rows] == [0, 0, 0, 1, 1, 1]  # every network's first seed before any second
    assert all(r["result"]["status"] == "ok" and r["result"]["steps"] == 4 for r in rows)
    ladder = report["groups"][0]
    assert ladder["trained"] == 3 and ladder["proxy"]["counted"] == 3 and 0 <= ladder["proxy"]["ordered"] <= 3
    means = {n["preset"]: n["proxy"] for n in ladder["networks"] if n["preset"]}
    for preset, mean in means.items():
        logged = [r["result"]["accuracy"] for r in rows if r["preset"] == preset]
        assert mean == pytest.approx(np.mean(logged))
    assert report["overall"]["flops"]["ordered"] == 0.5  # the fact of the table: no proxy can change it
    assert report["runs_logged"] == report["runs_planned"] == 6
    page = (out / "validate.html").read_text()
    assert "plotly" in page and "ladder: " in page and "published pairs ordered as published" in page.lower()
    # a process killed between logging a run and deleting its kept progress left the file: the next run deletes it
    stale = out / "cache" / "progress" / f"{rows[0]['key']}.pt"
    stale.write_bytes(b"left by a kill")
    before = (out / "log.jsonl").read_bytes()
    run_validate(settings, out)
    assert not stale.exists() and (out / "log.jsonl").read_bytes() == before  # and nothing trained again
    # the log is the record: analysing it again trains nothing and gives the same numbers
    again = run_validate(settings, out, analyse_only=True)
    assert (out / "log.jsonl").read_bytes() == before and again["overall"] == report["overall"]
    # a study of the same proxy quotes it beside its fidelity line
    study = run_search(config_from_options({**TINY_VALIDATE, "studies_dir": str(tmp_path / "s"), "study": "p", "trials": 1,
                                            "baselines": False, "executor": "inline", "budget_flops": "150M",
                                            "budget_mem": "4MB"}), Reporter("quiet"))
    page = write_report(study, tmp_path / "report.html", fidelity_dirs=[tmp_path]).read_text()
    assert (f"this proxy orders {report['overall']['proxy']['ordered']:g} of 3 published pairs as published" in page
            and "FLOPs alone 0.5" in page)
    # and its seed noise: one trained trial, which is the largest the proxy cannot tell from the best
    assert "also the largest the proxy cannot tell from it" in page
    assert measured_seed_noise(study.user_attrs["nasface_config"], [tmp_path]) == (
        report["overall"]["seed_noise"]["std_points_mean"], str(out / "validate.json"))
    # another proxy, other data or another teacher is not this validation's
    settings_of_study = study.user_attrs["nasface_config"]
    assert measured_validity(settings_of_study, [tmp_path])["path"] == str(out / "validate.json")
    for changed in ({"proxy": {**settings_of_study["proxy"], "steps": 5}}, {"teacher": "auto"},
                    {"data": {**settings_of_study["data"], "pairs": 81}}):
        assert measured_validity({**settings_of_study, **changed}, [tmp_path]) is None


def test_a_killed_validation_continues_where_it_stopped(tmp_path):
    out = tmp_path / "v"
    args = ["validate", *TINY_VALIDATE_ARGS, "--seeds", "2", "--published", str(tiny_published_table(tmp_path)), "--out", str(out)]
    before, finished = killed_then_finished(args, tmp_path, out / "log.jsonl")
    assert 2 <= len(before) < 6
    after = (out / "log.jsonl").read_text().splitlines()
    assert after[:len(before)] == before  # nothing finished was trained again
    keys = [json.loads(line)["key"] for line in after]
    assert len(keys) == len(set(keys)) == 6  # and nothing twice
    assert f"{len(before)} of 6 runs logged" in finished.stdout
    assert list((out / "cache" / "progress").iterdir()) == []  # each run's kept progress deleted once logged
    assert "6 of 6 runs logged" in finished.stdout and "FLOPs alone" in finished.stdout
    assert default_table_path().is_file()


def test_validate_runs_where_only_torch_is_installed(tmp_path):
    """A GPU machine's image may lack Optuna, Ray, SQLAlchemy, pandas and plotly: validate trains and
    analyses without them, and leaves the page to a machine that has plotly."""
    code = (
        "import json, logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')  # the library's messages\n"
        "for name in ('optuna', 'ray', 'sqlalchemy', 'plotly', 'pandas'):\n"
        "    sys.modules[name] = None  # importing it now raises ImportError\n"
        "from nasface.search.config import config_from_options\n"
        "from nasface.validity.validate import ValidateSettings, run_validate\n"
        f"settings = ValidateSettings(search=config_from_options({TINY_VALIDATE!r}), seeds=1, published={str(tiny_published_table(tmp_path))!r})\n"
        "from nasface.ui.validity_page import write_page\n"
        "report = run_validate(settings, 'v', write_page=write_page)\n"
        "print(json.dumps(report['overall']['proxy']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["counted"] == 3
    assert "plotly is not installed" in done.stdout and "validate --analyse writes it" in done.stdout
    assert (tmp_path / "v" / "validate.json").is_file() and not (tmp_path / "v" / "validate.html").exists()
    assert len((tmp_path / "v" / "log.jsonl").read_text().splitlines()) == 3
