"""nasface as a package: its data travels inside it, a built wheel works outside the checkout, and the
README says what `make search` runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.factories import REPO

PACKAGED = REPO / "nasface" / "resources" / "search_spaces"


def test_presets_and_the_default_space_load_from_the_package():
    import nasface
    from nasface.arch.space import load_space

    assert "vargfacenet" in nasface.preset_names() and "lfr.yaml" in str(load_space().path)
    assert (REPO / "nasface" / "py.typed").is_file()


def test_training_and_the_fidelity_study_need_no_search_stack():
    """A GPU machine's image may hold torch but not Optuna, Ray, SQLAlchemy or plotly: checking a
    study's settings, loading its data and training candidates (all `nasface fidelity` does before
    its analysis) import none of them."""
    code = (
        "import sys\n"
        "for name in ('optuna', 'ray', 'sqlalchemy', 'plotly', 'pandas'):\n"
        "    sys.modules[name] = None  # importing it now raises ImportError\n"
        "from nasface.search import check_config, load_proxy_data\n"
        "from nasface.search.config import config_from_options\n"
        "from nasface.fidelity import FidelitySettings, draw_architectures\n"
        "import nasface.cli, nasface.training.teacher, nasface.training.proxy\n"
        "config = config_from_options({'data': 'orl'}, 'studies/lfr-light.yaml')\n"
        "check_config(config)\n"
        "print(len(draw_architectures(FidelitySettings(search=config, architectures=8))))\n")
    result = _run([sys.executable, "-c", code], REPO, dict(os.environ))
    assert int(result.stdout.split()[-1]) >= 8


def _run(args: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_works(tmp_path):
    """Build a wheel from the sources, install it into a fresh venv, and run nasface elsewhere.

    The wheel is installed without its dependencies, which the venv sees through a .pth file
    naming this environment's site-packages (installing torch and Ray again would take minutes and
    the network).  That directory is only appended to sys.path, so the editable install it holds
    (a .pth of its own) is not processed: nasface can only come from the wheel, and a file the
    wheel lacks fails here.
    """
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(REPO / "nasface", source / "nasface", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    wheels = tmp_path / "wheels"
    # No build isolation: the build uses this environment's setuptools instead of fetching one.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(wheels), str(source)], tmp_path, env)
    wheel = next(wheels.glob("nasface-*.whl"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], tmp_path, env)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).stdout.strip())
    (site / "nasface-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = json.loads(_run([str(python), "-c", "import json, sys, nasface; "
                             "print(json.dumps([nasface.__file__, sys.path]))"], elsewhere, env).stdout)
    assert Path(where[0]).is_relative_to(venv), where[0]
    assert not any((elsewhere / entry).resolve() == REPO for entry in where[1]), where[1]

    nasface = str(venv / "bin" / "nasface")
    presets = _run([nasface, "presets", "--json"], elsewhere, env).stdout.splitlines()
    assert len(presets) == len(list((PACKAGED / "presets").glob("*.yaml")))
    counted = json.loads(_run([nasface, "count", "vargfacenet", "--json"], elsewhere, env).stdout)
    assert counted["flops"] == 1_022_864_152
    space = _run([nasface, "space", "--estimate", "50"], elsewhere, env).stdout
    assert "stages.varg.group_size" in space
    _run([nasface, "search", "--executor", "inline", "--trials", "1", "--no-baselines", "--data", "orl",
          "--teacher", "none", "--proxy-steps", "2", "--proxy-batch", "8", "--resolution", "32",
          "--budget-flops", "1G", "--budget-mem", "20MB", "--device", "cpu", "--study", "wheel",
          "--output", "quiet"], elsewhere, env, timeout=600)
    report = json.loads(_run([nasface, "report", "wheel", "--json"], elsewhere, env).stdout)
    assert len(report) >= 1 and (elsewhere / "studies" / "wheel" / "study.db").is_file()


def test_the_commands_the_readme_says_make_search_runs_are_the_makefiles():
    """A new user reads the README's list to know what `make search` did and left to do."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("`make search` runs\n\n```bash\n", 1)[1].split("```", 1)[0]
    listed = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nsearch: install\n", 1)[1].split("\n\n", 1)[0]
    run = [line.strip().removeprefix("$(VENV)/bin/") for line in recipe.splitlines()]
    assert listed == run


def _resolve(name: str):
    """The object a dotted name names: its longest importable prefix, then attributes (None where one lacks)."""
    import importlib
    import warnings

    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # the former flat layout's paths still import
                found = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute, None)
        return found
    return None


def test_every_python_name_the_readme_gives_in_full_imports():
    """`nasface.a.b.name` in the README is what a user types into an import: each must resolve."""
    import re

    names = sorted(set(re.findall(r"`(nasface(?:\.\w+)+)", (REPO / "README.md").read_text())))
    assert len(names) > 20 and [name for name in names if _resolve(name) is None] == []
