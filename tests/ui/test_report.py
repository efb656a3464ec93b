"""Reports, JSON / CSV views and export of a real (tiny) study."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

import nasface
from nasface.search.results import open_study, study_frame
from nasface.ui.study_page import hypervolume, write_report


@pytest.fixture(scope="module")
def study_dir(tiny_study):
    return tiny_study


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True, timeout=300)


def test_hypervolume_hand_cases():
    assert hypervolume([[1.0, 1.0, 1.0]]) == pytest.approx(1.0)
    assert hypervolume([[0.5, 0.5, 0.5]]) == pytest.approx(0.125)
    # two boxes overlapping in a 0.5 x 0.5 x 1 column: 0.5 + 0.5 - 0.25
    assert hypervolume([[1.0, 0.5, 1.0], [0.5, 1.0, 1.0]]) == pytest.approx(0.75)
    assert hypervolume([[1.0, 0.5, 1.0], [0.5, 0.4, 0.9]]) == pytest.approx(0.5)  # dominated point adds nothing
    assert hypervolume([[-0.1, 0.5, 0.5]]) == 0.0
    assert hypervolume(__import__("numpy").zeros((0, 3))) == 0.0


def test_study_frame_and_csv(study_dir, tmp_path):
    study = open_study("r", study_dir)
    frame = study_frame(study)
    assert {"number", "state", "accuracy", "flops", "macs", "params", "weight_bytes", "baseline",
            "fail_reason"} <= set(frame.columns)
    mobilefacenet = frame[frame.baseline == "mobilefacenet"].iloc[0]  # its choices, by knob of the space
    assert (mobilefacenet["stages.family"], mobilefacenet["embedding.kind"]) == ("/".join(["bottleneck"] * 5), "gdc")
    assert "mobilefacenet" in set(frame.baseline)
    out = tmp_path / "trials.csv"
    result = cli("report", "r", "--studies-dir", str(study_dir), "--csv", str(out), "--json")
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(out)
    assert len(rows) == len(study.trials)
    pareto = json.loads(result.stdout)
    assert all(set(entry) >= {"number", "spec", "cost", "metrics"} for entry in pareto)
    frame_pareto = set(frame[frame.pareto].number)
    assert {entry["number"] for entry in pareto} == frame_pareto


def test_html_report_is_self_contained(study_dir):
    result = cli("report", "r", "--studies-dir", str(study_dir))
    assert result.returncode == 0, result.stderr
    page = (study_dir / "r" / "report.html").read_text()
    import re

    assert not re.search(r"<script[^>]+src=", page)  # nothing loaded from elsewhere: works offline
    assert len(page) > 1_000_000 and "Plotly.newPlot" in page  # plotly.js inlined
    for section in ("pareto_flops", "pareto_weight_bytes", "pareto_3d", "hypervolume"):
        assert f'id="{section}"' in page
    assert "vargfacenet" in page  # baselines labelled
    # The settings as a table a person reads, not a JSON dump.
    assert '<table class="settings">' in page and "<td>weight bytes</td><td>20,000,000</td>" in page
    assert '{"budgets"' not in page


def test_labels_of_nearby_points_do_not_overlap():
    from nasface.ui.study_page import LABEL_PX_PER_CHAR, LABEL_ROW_PX, PLOT_PX, label_offsets

    points = [(289e6, 0.822, "seesaw-shuffle-facenet"), (289e6, 0.822, "seesaw-share-facenet"),
              (440e6, 0.82, "mobilefacenet"), (487e6, 0.82, "mobiface"), (1.02e9, 0.80, "vargfacenet"),
              (1.05e9, 0.83, "dw-seesawfacenet")]
    spots = label_offsets(points, (0.0, 1.1e9), (0.5, 0.85))
    assert [text for *_, text, _ in spots].count("seesaw-share-facenet / seesaw-shuffle-facenet") == 1
    assert len(spots) == 5
    boxes = []
    for x, y, text, rise in spots:
        centre, base = x / 1.1e9 * PLOT_PX[0], (y - 0.5) / 0.35 * PLOT_PX[1] + rise
        half = len(text) * LABEL_PX_PER_CHAR / 2
        boxes.append((centre - half, centre + half, base, base + LABEL_ROW_PX))
    for index, (left, right, bottom, top) in enumerate(boxes):
        for other in boxes[index + 1:]:
            assert right <= other[0] or other[1] <= left or top <= other[2] or other[3] <= bottom, (boxes, spots)


def test_export_best_and_numbered(study_dir, tmp_path):
    result = cli("export", "r", "--trial", "best", "--studies-dir", str(study_dir), "-o", str(tmp_path / "best"))
    assert result.returncode == 0, result.stderr
    recipe = yaml.safe_load((tmp_path / "best" / "recipe.yaml").read_text())
    spec = nasface.load_spec(tmp_path / "best" / recipe["spec"])
    assert recipe["lr"] == 0.1 and recipe["momentum"] == 0.9 and recipe["weight_decay"] == 5e-4
    assert recipe["scale"] == 64.0 and recipe["margin"] == "arcface" and recipe["generations"] >= 1
    assert recipe["costs"]["flops"] == nasface.count(spec)["flops"] <= 1_000_000_000
    study = open_study("r", study_dir)
    frame = study_frame(study)
    best = frame[frame.kind.isin(["candidate", "baseline"]) & frame.feasible].accuracy.max()
    assert recipe["proxy"]["accuracy"] == pytest.approx(best)
    bad = cli("export", "r", "--trial", "999", "--studies-dir", str(study_dir), "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and not (tmp_path / "x").exists()


def test_export_largest_within_noise(study_dir, tmp_path):
    from nasface.search.record import TRAINED
    from nasface.search.results import best_trial, largest_within_noise, within_noise_margin

    study = open_study("r", study_dir)
    frame = study_frame(study)
    usable = frame[frame.kind.isin(TRAINED) & frame.feasible & frame.accuracy.notna()].set_index("number")
    best = usable.accuracy.max()
    noises = (0.0, 0.5, 2.0, 5.0, 1000.0)
    picks = [largest_within_noise(study, noise).number for noise in noises]
    for noise, pick in zip(noises, picks):
        close = usable[usable.accuracy >= best - within_noise_margin(noise) - 1e-12]
        assert pick in close.index and usable.flops[pick] == close.flops.max()  # the largest the proxy cannot tell apart
    assert usable.accuracy[picks[0]] == best and usable.flops[picks[-1]] == usable.flops.max()
    assert [usable.flops[p] for p in picks] == sorted(usable.flops[p] for p in picks)  # more noise, never smaller
    out = tmp_path / "largest"
    result = cli("export", "r", "--trial", "largest-within-noise", "--seed-noise", "1000", "--studies-dir",
                 str(study_dir), "-o", str(out))
    assert result.returncode == 0, result.stderr
    proxy = yaml.safe_load((out / "recipe.yaml").read_text())["proxy"]
    assert proxy["trial"] == picks[-1] and proxy["chosen_by"] == {
        "rule": "largest-within-noise", "seed_noise_points": 1000.0, "margin_points": pytest.approx(100 * within_noise_margin(1000)),
        "most_accurate_trial": best_trial(study).number}
    # no validation of this proxy to read the noise from, and none given; or a noise that is no number of points
    for extra in ([], ["--seed-noise", "-1"]):
        bad = cli("export", "r", "--trial", "largest-within-noise", *extra, "--studies-dir", str(study_dir),
                  "--fidelity-dir", str(tmp_path / "none"), "-o", str(tmp_path / "x"))
        assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        assert ("--seed-noise" if not extra else "0 or more") in bad.stderr and not (tmp_path / "x").exists()


def test_missing_study_is_one_clear_line(tmp_path):
    result = cli("report", "nope", "--studies-dir", str(tmp_path))
    assert result.returncode == 2 and "no study 'nope'" in result.stderr and "Traceback" not in result.stderr
    assert "give --studies-dir (or --storage) where the search kept it" in result.stderr  # the usual cause


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_report_draws_in_headless_chromium(study_dir, tmp_path):
    path = write_report(open_study("r", study_dir), tmp_path / "report.html")
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=8000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert dom.count('class="main-svg"') >= 4  # plotly drew its figures
    errors = [line for line in result.stderr.splitlines() if "Uncaught" in line or "CONSOLE(" in line and "rror" in line]
    assert not errors, errors
    # A screenshot of the page as a person sees it (settings table, labelled figures): kept as
    # report.png in the test's folder for a look, and at least drawn.
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400", "--virtual-time-budget=8000",
                    f"--screenshot={shot}", path.as_uri()], capture_output=True, text=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.getcolors(1 << 16)  # None: more colours than that
        assert image.size == (1280, 2400) and (colours is None or len(colours) > 50)  # drawn, not blank


@pytest.fixture(scope="module")
def tight_study(tmp_path_factory):
    """A study at budgets most of the space misses: rejected trials beside one trained candidate."""
    from nasface.ui.progress import Reporter
    from nasface.search import run_search
    from tests.factories import tiny_config

    root = tmp_path_factory.mktemp("tight-study")
    run_search(tiny_config(root, study="tight", budget_flops="60M", budget_mem="2MB", trials=1, sampler="random"),
               Reporter("quiet"))
    return root / "studies"


def test_a_study_with_no_trial_yet_reports_an_empty_page(tmp_path):
    """As a driver killed right after creating its study leaves it: a valid page, no traceback."""
    import optuna

    (tmp_path / "empty").mkdir()
    optuna.create_study(study_name="empty", storage=f"sqlite:///{tmp_path / 'empty' / 'study.db'}",
                        directions=["maximize", "minimize", "minimize"])
    result = cli("report", "empty", "--studies-dir", str(tmp_path))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "none yet" in (tmp_path / "empty" / "report.html").read_text()
    with_rows = cli("report", "empty", "--studies-dir", str(tmp_path), "--csv", str(tmp_path / "rows.csv"))
    assert f"and {tmp_path / 'rows.csv'} in" in with_rows.stdout  # the page's line names the CSV it wrote too
    listed = cli("report", "empty", "--studies-dir", str(tmp_path), "--json", "--csv", str(tmp_path / "t.csv"))
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    assert pd.read_csv(tmp_path / "t.csv").empty


def test_exporting_a_trial_that_never_trained_is_refused(tight_study, tmp_path):
    from nasface.search.record import records

    rejected = next(facts for facts in records(open_study("tight", tight_study)) if facts.kind == "rejected")
    result = cli("export", "tight", "--trial", str(rejected.number), "--studies-dir", str(tight_study),
                 "-o", str(tmp_path / "x"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: trial {rejected.number} was rejected and never trained (over budget: ")
    assert "--trial best" in line and not (tmp_path / "x").exists()


def test_failed_and_rejected_trials_are_grouped_by_reason_not_by_their_figures(tight_study):
    from nasface.ui.study_page import reasons_table

    frame = study_frame(open_study("tight", tight_study))
    table = reasons_table(frame)
    rejected = frame[frame.kind == "rejected"]
    assert rejected.fail_reason.nunique() > 1  # each carries its own exact FLOPs...
    rows = table[table.kind == "rejected"]
    assert len(rows) < rejected.fail_reason.nunique()  # ...and trials over the same budgets share a row
    assert not rows.reason.str.contains(r"\d").any() and rows.reason.str.startswith("over budget: ").all()
    assert table.trials.sum() == (frame.fail_reason != "").sum()  # every trial with a reason, once


def test_the_pareto_table_shows_counts_and_accuracies_as_a_person_reads_them(study_dir):
    import re

    assert cli("report", "r", "--studies-dir", str(study_dir)).returncode == 0
    page = (study_dir / "r" / "report.html").read_text()
    table = page[page.index("<h2>Pareto-optimal trials"):page.index("<h2>Trials by kind")]
    assert "<td>" in table and '<div class="wide">' in table  # scrolls inside the page, not beyond it
    assert not re.search(r"\d{4,}\.\d", table) and "None" not in table and "nan" not in table
    flops = [int(n.replace(",", "")) for n in re.findall(r"<td>(\d{1,3}(?:,\d{3})+)</td>", table)]
    assert flops and all(n > 1000 for n in flops)
    assert re.findall(r"<td>0\.\d{4}</td>", table)  # accuracies to 4 places
