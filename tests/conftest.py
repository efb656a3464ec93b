"""The tests' shared fixtures (their factories and helpers: ``tests/factories.py``)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.factories import REPO, SMALL, tiny_config

SHARED = REPO.parent / "shared"

# The Ctrl-C tests send SIGINT to the searches they start, which inherit an ignored SIGINT (the suite run
# as `make test &` from a script without job control): give them Ctrl-C's default, as a terminal would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (the papers' data beside the repository) is not present")
    return SHARED


@pytest.fixture(scope="session")
def dlib_installed() -> None:
    """For tests of the nasface[dlib] extra: skipped without it, but a failure in CI (``CI`` set),
    which installs the extra, so a broken install cannot pass as skipped tests."""
    from nasface.data import dlib_models

    if not dlib_models.available():
        reason = f"dlib's face models are not installed ({dlib_models.INSTALL_HINT})"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the dlib tests must run, but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """Proxy data of 16 identities, shared by a module's tests."""
    from nasface.search import load_proxy_data

    return load_proxy_data(SMALL, 0, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """The studies directory of a real, tiny finished search named "r" (3 trials and the baselines)."""
    from nasface.ui.progress import Reporter
    from nasface.search import run_search

    root = tmp_path_factory.mktemp("tiny-study")
    run_search(tiny_config(root, study="r", trials=3, baselines=True), Reporter("quiet"))
    return root / "studies"
