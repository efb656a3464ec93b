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
from nasface.report import hypervolume, open_study, study_frame, write_report


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
    from nasface.report import LABEL_PX_PER_CHAR, LABEL_ROW_PX, PLOT_PX, label_offsets

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


def test_missing_study_is_one_clear_line(tmp_path):
    result = cli("report", "nope", "--studies-dir", str(tmp_path))
    assert result.returncode == 2 and "no study 'nope'" in result.stderr and "Traceback" not in result.stderr


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
