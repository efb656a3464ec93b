"""Shared helpers for the tests: independent cost counters (fvcore, ptflops) and paths."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def fvcore_macs(model: nn.Module, size: int = 112) -> int:
    """Convolution + fully connected MACs as fvcore reports them (it counts one per MAC)."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, size, size))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    by_operator = analysis.by_operator()
    return sum(by_operator.get(op, 0) for op in ("conv", "linear", "addmm", "matmul", "mm"))


def ptflops_macs(model: nn.Module, size: int = 112) -> int:
    """ptflops (aten backend) MACs of convolutions and matrix products.

    ptflops adds one operation per output for a bias; the analytic MAC count (like the papers'
    MAdds) does not, so the biases are dropped from a copy before counting.
    """
    from ptflops import get_model_complexity_info

    stripped = copy.deepcopy(model).eval()
    for module in stripped.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
            module.bias = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, _ = get_model_complexity_info(stripped, (3, size, size), as_strings=False, backend="aten",
                                            print_per_layer_stat=False, verbose=False)
    return int(macs)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """The studies directory of a real, tiny finished search named "r" (3 trials and the baselines)."""
    from nasface.ui.progress import Reporter
    from nasface.search import run_search
    from tests.test_search import tiny_config

    root = tmp_path_factory.mktemp("tiny-study")
    run_search(tiny_config(root, study="r", trials=3, baselines=True), Reporter("quiet"))
    return root / "studies"
