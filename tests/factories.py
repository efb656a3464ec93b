"""What several test modules build: tiny settings, small networks, fake data files, drivers.

One home for them, so no test module imports another.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
import torch
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from nasface.arch.budget import Budgets
from nasface.arch.spec import save_spec, spec_from_dict
from nasface.search import DataSettings, SearchConfig, config_from_options, record
from nasface.training.settings import ProxyBudget
from nasface.training.recipe import Recipe, save_recipe


REPO = Path(__file__).resolve().parents[1]


# -- from test_search -------------------------------------------------------------------------------
TINY_DATA = {"train_identities": 12, "images_per_identity": 4, "val_identities": 8, "pairs": 80}


TINY_PROXY = {"proxy_steps": 3, "proxy_batch": 8, "resolution": 32}


def tiny_config(tmp_path: Path, **overrides) -> SearchConfig:
    flags = {"budget_flops": "1G", "budget_mem": "20MB", "studies_dir": str(tmp_path / "studies"),
             "study": "t", "teacher": "none", "executor": "inline", "trials": 2, "baselines": False,
             "seed": 0, "device": "cpu", **TINY_PROXY, **TINY_DATA, **overrides}
    return config_from_options(flags)


def assert_budget_invariant(study: optuna.Study, budgets: Budgets) -> None:
    """Every trained candidate (not a baseline) is within budget; rejected ones never trained."""
    for facts in record.records(study):
        if facts.kind in ("candidate", "failed") and not facts.baseline:
            assert budgets.fits(facts.cost), (facts.number, facts.cost)
        if facts.kind == "rejected":
            assert facts.metrics is None and facts.training_started is None
            assert facts.reason.startswith("over budget")
            assert any(value > 0 for value in facts.constraints.values())


# -- from test_train --------------------------------------------------------------------------------
SMALL = DataSettings(train_identities=16, images_per_identity=5, val_identities=10, pairs=120)


TINY_BUDGET = ProxyBudget(steps=4, batch_size=8, resolution=32, distill="none", device="cpu")


SMALL_NET = spec_from_dict({
    "name": "small", "stem": {"width": 16, "stride": 2}, "head": {"kind": "dw"},
    "stages": [{"family": "bottleneck", "repeats": 1, "width": 32, "stride": 2},
               {"family": "flgc", "repeats": 1, "width": 32, "stride": 2, "groups": 4}],
    "embedding": {"kind": "gdc", "width": 64, "size": 128}})


# -- from test_bad_input ----------------------------------------------------------------------------
ONE_STAGE_NET = {"name": "small", "stem": {"width": 16, "stride": 2}, "head": {"kind": "dw"},
             "stages": [{"family": "bottleneck", "repeats": 1, "width": 32, "stride": 2}],
             "embedding": {"kind": "gdc", "width": 64, "size": 128}}


# -- from test_data_bin -----------------------------------------------------------------------------
def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def faces(count: int, size: tuple[int, int] = (112, 112)) -> list[np.ndarray]:
    rng = np.random.default_rng(count)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


# -- from test_data_recordio ------------------------------------------------------------------------
MAGIC = 0xCED7230A


MAGIC_BYTES = struct.pack("<I", MAGIC)


def encode_record(payload: bytes) -> bytes:
    """One record as dmlc-core writes it: split at every 4-byte-aligned magic number
    (dropping it), parts flagged 1 (first), 2 (middle), 3 (last), or 0 when unsplit."""
    out = bytearray()
    start = 0
    for position in range(0, len(payload) // 4 * 4, 4):
        if payload[position:position + 4] == MAGIC_BYTES:
            flag = 1 if start == 0 else 2
            out += MAGIC_BYTES + struct.pack("<I", flag << 29 | (position - start)) + payload[start:position]
            start = position + 4
    flag = 3 if start else 0
    out += MAGIC_BYTES + struct.pack("<I", flag << 29 | (len(payload) - start)) + payload[start:]
    out += bytes(-len(payload) % 4)
    return bytes(out)


def write_recordio(prefix: Path, payloads: list[bytes], keys: list[int] | None = None) -> None:
    """PREFIX.rec and PREFIX.idx ("key<TAB>offset" lines), as MXIndexedRecordIO writes them."""
    keys = list(range(len(payloads))) if keys is None else keys
    rec, index = bytearray(), []
    for key, payload in zip(keys, payloads):
        index.append(f"{key}\t{len(rec)}\n")
        rec += encode_record(payload)
    Path(f"{prefix}.rec").write_bytes(bytes(rec))
    Path(f"{prefix}.idx").write_text("".join(index))


def ir_header(label, image: bytes = b"", record_id: int = 0, record_id2: int = 0) -> bytes:
    """mxnet.recordio.pack: a label list becomes flag = len(labels) float32 labels after the header."""
    if isinstance(label, (list, tuple)):
        head = struct.pack("<IfQQ", len(label), 0.0, record_id, record_id2)
        return head + np.asarray(label, np.float32).tobytes() + image
    return struct.pack("<IfQQ", 0, float(label), record_id, record_id2) + image


def face(seed: int, size: tuple[int, int] = (112, 112)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


# -- from test_cost ---------------------------------------------------------------------------------
# -- random specs (property-based) ------------------------------------------------------------
WIDTHS = st.sampled_from([16, 32, 48, 64])


@st.composite
def block_knobs(draw):
    family = draw(st.sampled_from(["bottleneck", "varg", "seesaw", "flgc", "ir", "mixconv", "ghost", "shufflev2"]))
    act = draw(st.sampled_from(["prelu", "relu", "swish"]))
    se_ratio = draw(st.sampled_from([0, 4, 8]))
    if family == "bottleneck":
        return {"family": family, "expansion": draw(st.sampled_from([1, 2, 3, 4])), "se_ratio": se_ratio, "act": act}
    if family == "varg":
        return {"family": family, "group_size": draw(st.sampled_from([4, 8, 16])),
                "factor": draw(st.sampled_from([1, 2])), "se_ratio": se_ratio, "act": act}
    if family == "seesaw":
        return {"family": family, "expansion": draw(st.sampled_from([1, 2, 4])),
                "split": draw(st.sampled_from([[1, 3], [1, 1], [3, 5]])),
                "variant": draw(st.sampled_from(["shuffle", "share"])), "se_ratio": se_ratio, "act": act,
                "mapping": draw(st.booleans())}
    if family == "flgc":
        return {"family": family, "expansion": draw(st.sampled_from([1, 2, 4])),
                "groups": draw(st.sampled_from([2, 4, 8])), "se_ratio": se_ratio, "act": act}
    if family == "mixconv":  # group counts of 3 split channels unevenly (the first group takes the rest)
        return {"family": family, "expansion": draw(st.sampled_from([1, 3, 6])), "kernels": draw(st.integers(1, 4)),
                "expand_groups": draw(st.integers(1, 3)), "project_groups": draw(st.integers(1, 3)),
                "se_ratio": se_ratio, "act": act, "shuffle": draw(st.booleans())}
    if family == "ghost":
        return {"family": family, "expansion": draw(st.sampled_from([1, 2, 3, 6])), "kernel": draw(st.sampled_from([3, 5])),
                "se_ratio": se_ratio, "act": act}
    if family == "shufflev2":
        return {"family": family, "kernel": draw(st.sampled_from([3, 5])), "act": act}
    return {"family": family, "se_ratio": se_ratio, "act": act}


@st.composite
def random_specs(draw):
    stem_stride = draw(st.sampled_from([1, 2]))
    head = draw(st.sampled_from([{"kind": "dw", "stride": 1}, {"kind": "dw", "stride": 2},
                                 {"kind": "varg", "stride": 2, "group_size": 8, "factor": 1},
                                 {"kind": "none", "stride": 1}]))
    size = 112 // stem_stride // head["stride"]
    stages = []
    for _ in range(draw(st.integers(1, 4))):
        stride = draw(st.sampled_from([1, 2]))
        size = (size + 1) // 2 if stride == 2 else size
        stages.append({**draw(block_knobs()), "repeats": draw(st.integers(1, 2)), "width": draw(WIDTHS),
                       "stride": stride})
    while size > 14:  # keep the flattened FC embeddings small
        stages.append({**draw(block_knobs()), "repeats": 1, "width": draw(WIDTHS), "stride": 2})
        size = (size + 1) // 2
    kind = draw(st.sampled_from(["gdc", "varg", "fc", "gap"]))
    embedding = {"kind": kind, "size": draw(st.sampled_from([128, 256, 512])),
                 "width": draw(st.sampled_from([32, 64])) if kind != "fc" else draw(st.sampled_from([None, 16, 32])),
                 "group_size": 8}
    return spec_from_dict({"name": "random", "stem": {"width": draw(WIDTHS), "stride": stem_stride},
                           "head": head, "stages": stages, "embedding": embedding})


# -- from test_fulltrain ----------------------------------------------------------------------------
TINY_NET = spec_from_dict({
    "name": "tiny", "stem": {"width": 16, "stride": 2}, "head": {"kind": "dw"},
    "stages": [{"family": "bottleneck", "repeats": 1, "width": 32, "stride": 2},
               {"family": "flgc", "repeats": 1, "width": 32, "stride": 2, "groups": 4}],
    "embedding": {"kind": "gdc", "width": 64, "size": 128}})

# A few steps of 8 faces on the CPU: seconds, yet every part of the run (stages, checkpoints,
# verification, resume) is exercised.
QUICK = {"data": "orl", "teacher": "none", "generations": 1, "steps": 6, "batch_size": 8, "device": "cpu",
         "checkpoint_every": 3, "eval_every": 1000}


def write_recipe(folder: Path, **fields) -> Path:
    """A recipe.yaml beside the tiny spec, as ``nasface export`` would leave it (plus ``fields``)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_spec(TINY_NET, folder / "tiny.yaml")
    return save_recipe(Recipe(spec="tiny.yaml", **{**QUICK, **fields}), folder / "recipe.yaml")


# -- from test_faults -------------------------------------------------------------------------------
POSTGRES = os.environ.get("NASFACE_TEST_POSTGRES")

needs_postgres = pytest.mark.skipif(
    not POSTGRES, reason="NASFACE_TEST_POSTGRES is not set (.ci/postgres starts a server and prints its URL)")


STATES = optuna.trial.TrialState


def search_args(tmp_path: Path, study: str, *extra: str, steps: int = 3, executor: str = "inline") -> list[str]:
    definition = tmp_path / "tiny.yaml"
    definition.write_text(json.dumps(TINY_DATA))  # JSON is YAML: the tiny proxy data sizes
    return ["search", "--config", str(definition), "--budget-flops", "1G", "--budget-mem", "20MB",
            "--studies-dir", str(tmp_path / "studies"), "--study", study, "--executor", executor,
            "--proxy-steps", str(steps), "--proxy-batch", "8", "--resolution", "32", "--teacher", "none",
            "--device", "cpu", "--output", "jsonl", *extra]


def launch(*args: str, **kwargs) -> subprocess.Popen:
    # One torch thread per driver: several drivers share two cores here, and torch's spinning
    # OpenMP threads on a contended core make a training step up to 100x slower.
    return subprocess.Popen([sys.executable, "-m", "nasface", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            **kwargs)


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:  # timed out or interrupted: leave no driver running behind
            process.kill()
            process.communicate()
    return process.returncode, out, err


def run(*args: str, **kwargs) -> tuple[int, str, str]:
    return finish(launch(*args, **kwargs))


# -- independent cost counters (fvcore, ptflops), to check nasface's own ----------------------
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


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def run_python(code: str, **env) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=REPO, env={**os.environ, **env})
    return result.stdout.strip()


def created_study(name: str, storage: str) -> optuna.Study | None:
    """The study of a driver launched with ``storage`` (a SQLite URL), or None while it is not created
    yet: a driver announces itself ("start") before it decodes the proxy data, and creates the study
    after.  Asked read-only first, so the test never races the driver in creating the database."""
    import sqlite3

    path = Path(storage.removeprefix("sqlite:///"))
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
            found = database.execute("SELECT 1 FROM studies WHERE study_name = ?", (name,)).fetchone()
    except sqlite3.Error:  # no file yet, or no tables yet
        return None
    return None if found is None else optuna.load_study(study_name=name, storage=storage)


# -- validate: a tiny published table and proxy -------------------------------------------------------
TINY_TABLE = {"groups": [
    {"id": "ladder", "paper": "P", "table": "Table 4", "training_set": "MS1MV2", "recipe": "one", "flops_unit": "MAdds",
     "verified": True, "networks": [
         {"name": "MFN", "preset": "mobilefacenet", "flops": "221M", "params": "1.2M",
          "metrics": {"lfw": 99.52, "cfp_fp": 91.64, "agedb_30": 95.92}},
         {"name": "share", "preset": "seesaw-share-facenet", "flops": "146M", "params": "1.3M",
          "metrics": {"lfw": 99.55, "cfp_fp": 93.09, "agedb_30": 96.42}},
         {"name": "shuffle", "preset": "seesaw-shuffle-facenet", "flops": "146M", "params": "1.3M",
          "metrics": {"lfw": 99.70, "cfp_fp": 92.03, "agedb_30": 96.30}},
         {"name": "big", "preset": None, "planned_preset": "dw-seesawfacenet-v1", "flops": "514M", "params": None,
          "metrics": {"lfw": 99.80, "cfp_fp": 96.39, "agedb_30": 97.52}}]},
    {"id": "tie", "paper": "Q", "table": "Table 3", "training_set": "MS1M", "recipe": "two", "flops_unit": "MAdds",
     "verified": True, "networks": [
         {"name": "MFN*", "preset": "mobilefacenet", "flops": None, "params": None,
          "metrics": {"lfw": 99.48, "megaface": 90.71}},
         {"name": "shuffle*", "preset": "seesaw-shuffle-facenet", "flops": None, "params": None,
          "metrics": {"lfw": 99.72, "megaface": 90.9}}]}]}
TINY_VALIDATE = {"teacher": "none", "proxy_steps": 4, "proxy_batch": 8, "resolution": 32, "train_identities": 12,
        "images_per_identity": 4, "val_identities": 8, "pairs": 80, "device": "cpu", "seed": 0}
TINY_VALIDATE_ARGS = ["--teacher", "none", "--proxy-steps", "4", "--proxy-batch", "8", "--resolution", "32",
             "--train-identities", "12", "--val-identities", "8", "--pairs", "80", "--device", "cpu", "--threads", "1"]


def tiny_published_table(folder: Path) -> Path:
    """A two-group published table of the presets the tiny validate runs train (a ladder and a tie)."""
    path = folder / "published.yaml"
    path.write_text(yaml.safe_dump(TINY_TABLE))
    return path
