"""``nasface onnx``: the deployed network, run with onnxruntime, against the torch embedding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import nasface
from nasface.arch.checkpoint import load_checkpoint
from nasface.training.fulltrain import train_recipe
from nasface.arch.onnx_export import deployed_network, export_onnx
from nasface.arch.spec import save_spec
from tests.factories import TINY_NET, write_recipe


def onnx_embeddings(path: Path, faces: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": faces.numpy()})[0]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def assert_matches_torch(path: Path, model: torch.nn.Module) -> None:
    """At batch sizes other than the exporter's example, on face-like inputs in [-1, 1]."""
    for batch in (1, 5):
        faces = torch.rand(batch, 3, 112, 112, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        with torch.no_grad():
            expected = model.eval()(faces).numpy()
        assert cosines(onnx_embeddings(path, faces), expected).min() >= 0.9999


def operators(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True, timeout=300)


def test_the_deployed_network_is_the_trained_one():
    torch.manual_seed(0)
    model = nasface.build_model(TINY_NET)
    model.train()(torch.randn(16, 3, 112, 112))  # BatchNorm statistics that are not the identity
    model.eval()
    network, folded = deployed_network(model)
    assert folded == 9  # every conv / FC + BN pair but the two after FLGC layers
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in network.modules())
    faces = torch.rand(4, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(network(faces), model(faces), rtol=1e-4, atol=1e-4)


def test_a_flgc_spec_exports_as_grouped_convolutions(tmp_path):
    spec_path = save_spec(TINY_NET, tmp_path / "tiny.yaml")
    exported = export_onnx(spec_path, tmp_path / "tiny.onnx")
    assert exported.path.is_file() and not exported.trained and exported.min_cosine >= 0.9999
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "tiny.yaml"]  # no temporary file left
    graph = onnx.load(str(exported.path)).graph
    groups = [attribute.i for node in graph.node if node.op_type == "Conv"
              for attribute in node.attribute if attribute.name == "group"]
    assert 4 in groups  # the FLGC layers, deployed as 4-group convolutions
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, free batch dimension
    torch.manual_seed(0)
    assert_matches_torch(exported.path, nasface.build_model(TINY_NET))  # random weights from seed 0


def test_a_trained_checkpoint_exports_through_the_cli(tmp_path):
    result = train_recipe(write_recipe(tmp_path, steps=3), cache_dir=tmp_path / "cache")
    out = tmp_path / "deploy" / "model.onnx"
    run = cli("onnx", str(result.output), "-o", str(out))  # a run folder: its model.safetensors
    assert run.returncode == 0, run.stderr
    assert "trained weights" in run.stdout and "RANDOMLY" not in run.stdout
    assert_matches_torch(out, load_checkpoint(result.weights)[1])
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temporary file left


@pytest.mark.parametrize("preset", ["mobilefacenet", "seesaw-shuffle-facenet", "vargfacenet", "shufflemixfacenet-xs",
                                    "ghostfacenetv1-w0.5", "shufflefacenet-0.5x"])
def test_presets_match_torch_with_batchnorm_folded(preset, tmp_path):
    exported = export_onnx(preset, tmp_path / f"{preset}.onnx")
    assert "BatchNormalization" not in operators(exported.path)
    torch.manual_seed(0)
    assert_matches_torch(exported.path, nasface.build_model(preset))


def test_a_spec_says_its_weights_are_random(tmp_path):
    run = cli("onnx", str(save_spec(TINY_NET, tmp_path / "tiny.yaml")), "-o", str(tmp_path / "tiny.onnx"))
    assert run.returncode == 0, run.stderr
    assert "RANDOMLY INITIALISED" in run.stdout


def test_missing_onnx_packages_are_one_line_exit_2(tmp_path):
    blocked = "import sys; sys.modules.update(onnx=None, onnxscript=None, onnxruntime=None); "
    run = subprocess.run([sys.executable, "-c", blocked + "from nasface.cli import main; main()",
                          "onnx", "mobilefacenet", "-o", str(tmp_path / "m.onnx")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: ONNX export needs onnx, onnxscript, onnxruntime: pip install "
                                  "'nasface[onnx]' (or pip install onnx onnxscript onnxruntime)")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [
    (("no/such/weights.safetensors",), "no such checkpoint file"),
    (("nope",), "unknown preset 'nope'"),
])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    run = cli("onnx", *args, "-o", str(tmp_path / "m.onnx"))
    assert run.returncode == 2 and message in run.stderr and run.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())
