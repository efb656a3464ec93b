"""``nasface onnx``: the embedding network as an ONNX model, in its deployed form.

Before export the network is made what a device should run: each block takes its deployed form
(``nasface.arch.model.deploy``: FLGC layers become real group convolutions) and every BatchNorm that directly follows a
convolution or a fully connected layer is folded into it (IR-ResNet's BatchNorm *before* a
convolution, and the one after a deployed FLGC layer, whose output channels are re-ordered, stay
as they are).  The model takes N x 3 x 112 x 112 faces normalised as in training,
``(pixel - 127.5) / 128``, N free, and returns N x embedding.

The file is written under a temporary name, run with onnxruntime against the torch network at
two batch sizes, and renamed into place only when the embeddings agree (cosine >= 0.9999).  The exporter (torch's ``torch.export``-based
one) needs the ``onnx`` extra: ``pip install 'nasface[onnx]'``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from nasface.core.atomic import atomic_path
from nasface.arch.blocks.embeddings.module import EmbeddingBlock
from nasface.arch.blocks.mixconv.module import MixedConv
from nasface.arch.checkpoint import load_checkpoint
from nasface.core.errors import NasfaceError
from nasface.arch.model import build_model, deploy
from nasface.arch.spec import INPUT_SIZE, ArchSpec, load_spec

ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
RUN_WEIGHTS = "model.safetensors"  # what ``nasface train`` leaves in its output folder
CHECK_BATCHES = (1, 3)             # batch sizes the written model is run at: proves the batch is free
MIN_COSINE = 0.9999                # onnxruntime's embedding against torch's; below it nothing is written


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    spec: ArchSpec
    trained: bool              # False: a spec without weights, exported randomly initialised
    folded_batchnorms: int
    min_cosine: float          # onnxruntime's embeddings against torch's, worst over the check batches


def require_onnx() -> None:
    """One clear line, not a traceback, when the exporter's packages are not installed."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise NasfaceError(f"ONNX export needs {', '.join(missing)}: pip install 'nasface[onnx]' "
                           f"(or pip install {' '.join(ONNX_PACKAGES)})")


def fold_batchnorms(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution / linear layer into it (eval mode; a MixConv
    layer folds each channel group's slice into that group's convolution).

    ``model`` is changed in place; returns how many were folded.
    """
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            for index in range(len(module) - 1):
                first, second = module[index], module[index + 1]
                if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
                    module[index], module[index + 1] = fuse_conv_bn_eval(first, second), nn.Identity()
                    folded += 1
                elif isinstance(first, MixedConv) and isinstance(second, nn.BatchNorm2d):
                    module[index], module[index + 1] = first.folded(second), nn.Identity()
                    folded += 1
        elif isinstance(module, EmbeddingBlock) and isinstance(module.bn, nn.BatchNorm1d):
            module.fc, module.bn = fuse_linear_bn_eval(module.fc, module.bn), nn.Identity()
            folded += 1
    return folded


def deployed_network(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` as it is exported: its blocks deployed, BatchNorms folded, eval mode."""
    network = deploy(model.eval()).eval()
    return network, fold_batchnorms(network)


def _network_of(source: str | os.PathLike, spec: str | None) -> tuple[ArchSpec, nn.Module, bool]:
    """(spec, network, trained) from weights, a run folder, or a spec / preset (random weights)."""
    path = Path(source)
    if path.is_dir():
        path = path / RUN_WEIGHTS
        if not path.is_file():
            raise NasfaceError(f"{source}: a folder without {RUN_WEIGHTS}; give the weights file or a spec")
    if path.suffix in WEIGHT_SUFFIXES:
        arch, model = load_checkpoint(path, spec)
        return arch, model, True
    if spec is not None:
        raise NasfaceError(f"--spec is for weights without a spec; {source} is itself a spec")
    arch = load_spec(source)
    torch.manual_seed(0)
    return arch, build_model(arch).eval(), False


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter warns about optional torchvision operators and torch internals: noise here."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _min_cosine(onnx_path: Path, model: nn.Module) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(0)
    worst = 1.0
    for batch in CHECK_BATCHES:
        faces = torch.rand(batch, 3, INPUT_SIZE, INPUT_SIZE, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = model(faces).numpy().astype(np.float64)
        got = session.run(None, {input_name: faces.numpy()})[0].astype(np.float64)
        cosine = np.sum(expected * got, axis=1) / np.maximum(
            np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1), 1e-12)
        worst = min(worst, float(cosine.min()))
    return worst


def export_onnx(source: str | os.PathLike, output: str | os.PathLike, spec: str | None = None) -> OnnxExport:
    """Write the embedding network of ``source`` to ``output`` (.onnx) and check it with onnxruntime.

    ``source``: weights (``.safetensors`` with their spec inside, or a ``.pt`` state dict with
    ``spec``), a ``nasface train`` output folder, or a spec / preset name (randomly initialised).
    """
    require_onnx()
    arch, model, trained = _network_of(source, spec)
    if arch.input_size != INPUT_SIZE:
        raise NasfaceError(f"{arch.name} is built for {arch.input_size}x{arch.input_size} input; the ONNX model "
                           f"takes {INPUT_SIZE}x{INPUT_SIZE} faces: export its spec with input_size {INPUT_SIZE}")
    network, folded = deployed_network(model)
    output = Path(output)
    example = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)  # batch 2: torch.export specialises a batch of 1
    with atomic_path(output) as tmp:
        with _quiet_exporter():
            torch.onnx.export(network, (example,), str(tmp), input_names=["images"], output_names=["embedding"],
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, external_data=False,
                              verbose=False)
        min_cosine = _min_cosine(tmp, model)
        if min_cosine < MIN_COSINE:  # a bug in the deployed form or the exporter, never the user's input
            raise RuntimeError(f"the ONNX model of {arch.name} disagrees with torch (cosine {min_cosine:.6f}); "
                               f"nothing was written")
    return OnnxExport(path=output, spec=arch, trained=trained, folded_batchnorms=folded, min_cosine=min_cosine)
