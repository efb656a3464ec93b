"""The module paths of the flat layout (before issue 27's packages by role) keep working.

``from nasface.report import open_study`` and the like, as scripts and notebooks written before the
move have them, import the names from where they live now: an old path is a module whose names are
looked up in its new modules, in order, on first use.  Nothing is imported until an old path is.
``docs/module_map.md`` lists every move.  Importing an old path warns once (a ``FutureWarning``,
which Python shows to end users by default) naming where to import from instead: the aliases are a
bridge for code written before the move, not a second public layout.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

# old path -> the modules its names live in now (the first that has a name gives it)
MOVED = {
    "nasface.atomic": ("nasface.core.atomic",),
    "nasface.errors": ("nasface.core.errors",),
    "nasface.ranking": ("nasface.core.ranking",),
    "nasface.options": ("nasface.core.options", "nasface.cli.options"),
    "nasface.progress": ("nasface.core.stages", "nasface.ui.progress"),
    "nasface.spec": ("nasface.arch.spec", "nasface.core.plaindata"),
    "nasface.cost": ("nasface.arch.cost",),
    "nasface.model": ("nasface.arch.model",),
    "nasface.budget": ("nasface.arch.budget",),
    "nasface.space": ("nasface.arch.space",),
    "nasface.checkpoint": ("nasface.arch.checkpoint",),
    "nasface.onnx_export": ("nasface.arch.onnx_export",),
    "nasface.blocks": ("nasface.arch.blocks",),
    "nasface.dlib_models": ("nasface.data.dlib_models",),
    "nasface.losses": ("nasface.training.losses",),
    "nasface.evaluate": ("nasface.training.evaluate",),
    "nasface.signals": ("nasface.training.signals",),
    "nasface.teacher": ("nasface.training.teacher",),
    "nasface.fulltrain": ("nasface.training.fulltrain",),
    "nasface.fulltrain_progress": ("nasface.ui.training_progress", "nasface.training.events"),
    "nasface.executor": ("nasface.search.executor",),
    "nasface.storage": ("nasface.search.storage",),
    "nasface.rungs": ("nasface.search.rungs",),
    "nasface.export": ("nasface.search.export", "nasface.training.recipe"),
    "nasface.report": ("nasface.search.results", "nasface.ui.study_page"),
    "nasface.train": ("nasface.training.settings", "nasface.training.loop", "nasface.training.proxy",
                      "nasface.training.student"),
}
# old packages whose modules moved with them (``nasface.blocks.flgc`` -> ``nasface.arch.blocks.flgc``)
MOVED_PACKAGES = {"nasface.blocks": "nasface.arch.blocks"}


def new_modules(name: str) -> tuple[str, ...] | None:
    """Where the names of the old module ``name`` live now; None for a path that did not move."""
    if name in MOVED:
        return MOVED[name]
    package, _, leaf = name.rpartition(".")
    return (f"{MOVED_PACKAGES[package]}.{leaf}",) if package in MOVED_PACKAGES else None


class _OldPath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if new_modules(name) is None:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=name in MOVED_PACKAGES)

    def create_module(self, spec):
        return None  # the default: an empty module

    def exec_module(self, module: types.ModuleType) -> None:
        targets = new_modules(module.__name__)
        warnings.warn(f"{module.__name__} moved to {' and '.join(targets)}: import from there "
                      "(docs/module_map.md lists every move)", FutureWarning, stacklevel=2)

        def lookup(attribute: str):
            for target in targets:
                found = importlib.import_module(target)
                if hasattr(found, attribute):
                    return getattr(found, attribute)
            raise AttributeError(f"module {module.__name__!r} (now {', '.join(targets)}) has no attribute {attribute!r}")

        module.__getattr__ = lookup
        module.__doc__ = f"Moved: see {', '.join(targets)} (docs/module_map.md)."


def install() -> None:
    """Let the old paths import (once per process)."""
    if not any(isinstance(finder, _OldPath) for finder in sys.meta_path):
        sys.meta_path.append(_OldPath())
