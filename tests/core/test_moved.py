"""The flat layout's module paths (scripts and notebooks written before issue 27) still import."""

import importlib
import sys
import warnings

import pytest

import nasface
from nasface.core.moved import MOVED, MOVED_PACKAGES, new_modules


@pytest.fixture(autouse=True)
def fresh_old_paths():
    """Each test imports the old paths anew, so each sees the warning an old path gives."""
    for name in [name for name in sys.modules if new_modules(name) is not None]:
        del sys.modules[name]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_path_imports_and_its_new_modules_exist(old):
    with pytest.warns(FutureWarning, match=f"{old} moved to .*import from there"):
        module = importlib.import_module(old)
    for target in MOVED[old]:
        importlib.import_module(target)
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018


def test_the_names_the_readme_and_notebook_used_are_the_same_objects():
    from nasface.arch.blocks import flgc
    from nasface.arch.model import deploy
    from nasface.core.stages import Stages
    from nasface.search.results import open_study, study_frame
    from nasface.training.fulltrain import train_recipe
    from nasface.training.recipe import load_recipe
    from nasface.ui.study_page import figures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = {name: importlib.import_module(path) for name, path in (
            ("report", "nasface.report"), ("export", "nasface.export"), ("model", "nasface.model"),
            ("progress", "nasface.progress"), ("fulltrain", "nasface.fulltrain"), ("flgc", "nasface.blocks.flgc"))}
    assert old["report"].open_study is open_study and old["report"].study_frame is study_frame
    assert old["report"].figures is figures and old["export"].load_recipe is load_recipe
    assert old["model"].deploy is deploy and old["progress"].Stages is Stages
    assert old["fulltrain"].train_recipe is train_recipe and old["flgc"].deploy is flgc.deploy


def test_a_moved_package_gives_its_modules():
    for package, now in MOVED_PACKAGES.items():
        with pytest.warns(FutureWarning, match=f"{package} moved to {now}:"):
            importlib.import_module(package)
        with pytest.warns(FutureWarning, match=f"{package}.base moved to {now}.base"):
            assert importlib.import_module(f"{package}.base").BlockSpec is importlib.import_module(f"{now}.base").BlockSpec


def test_a_path_that_never_existed_does_not_import():
    assert nasface.__name__ == "nasface"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("nasface.no_such_module")
