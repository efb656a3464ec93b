"""Weights on disk, loaded safely.

nasface writes safetensors files whose metadata carries the spec (so a checkpoint says what
network it is).  It reads those, and plain PyTorch state dicts (``.pt`` / ``.pth``, e.g.
insightface's ``backbone.pth``) with ``torch.load(weights_only=True)``, which refuses pickled
code.  A state dict whose names differ from nasface's (insightface's iresnet) is matched by
position, every shape checked; a checkpoint of another architecture gets one clear error.

Full training's resumable state (model, margin head, optimiser, step, RNG) is a ``torch.save``
file of tensors and plain values only, so it too is read back with ``weights_only=True``.
Every file here is written under a temporary name and renamed into place: a process killed
while writing leaves the previous file intact.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from nasface.core.atomic import atomic_path
from nasface.core.errors import NasfaceError
from nasface.arch.model import build_model
from nasface.arch.spec import ArchSpec, dump_spec, load_spec, spec_from_dict

SPEC_KEY = "nasface_spec"


def save_weights(path: str | os.PathLike, model: nn.Module, spec: ArchSpec, metadata: dict | None = None) -> Path:
    """Write ``model``'s state (parameters and BN statistics) with its spec, atomically."""
    path = Path(path)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    meta = {SPEC_KEY: dump_spec(spec, "json"), **{k: str(v) for k, v in (metadata or {}).items()}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _torch_load(path: Path):
    """``torch.load(weights_only=True)``, quietly; ``ValueError`` with the unpickler's own reason."""
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 5": the error below says what matters
            warnings.simplefilter("ignore")
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses anything but tensors and plain containers
        text = str(err)
        if "WeightsUnpickler error:" in text:  # torch's first lines are generic advice; its reason follows
            text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
        raise ValueError(" ".join(text.split())[:160]) from None


def save_training_state(path: str | os.PathLike, state: dict) -> Path:
    """Write a resumable training state (tensors and plain values), atomically and durably."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_training_state(path: str | os.PathLike) -> dict:
    try:
        state = _torch_load(Path(path))
    except ValueError as err:
        raise NasfaceError(f"{path}: not a readable training checkpoint ({err}); delete it to train from the "
                           f"start") from None
    if not isinstance(state, dict):
        raise NasfaceError(f"{path}: not a nasface training checkpoint; delete it to train from the start")
    return state


def read_metadata(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise NasfaceError(f"{path}: not a readable safetensors file ({err})") from None


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise NasfaceError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise NasfaceError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        state = _torch_load(path)
    except ValueError as err:
        raise NasfaceError(f"{path}: cannot be loaded as a PyTorch state dict with weights_only=True "
                           f"({err})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NasfaceError(f"{path}: expected a state dict of tensors")
    return state


def checkpoint_spec(path: Path, spec: ArchSpec | str | None = None) -> ArchSpec:
    """The spec of a checkpoint: given, in its metadata, or in a ``spec.yaml`` beside it."""
    if spec is not None:
        return load_spec(spec)
    if path.suffix == ".safetensors":
        text = read_metadata(path).get(SPEC_KEY)
        if text:
            return spec_from_dict(yaml.safe_load(text))
    for sidecar in (path.with_suffix(".yaml"), path.parent / "spec.yaml"):
        if sidecar.is_file():
            return load_spec(sidecar)
    raise NasfaceError(f"{path}: no spec found for this checkpoint; give one (a preset name or spec file) "
                       f"or put spec.yaml beside it")


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``: by name, or by position when the names are another tool's."""
    own = model.state_dict()
    if set(state) == set(own):
        pairs = [(name, state[name]) for name in own]
    else:
        if len(state) != len(own):
            raise NasfaceError(f"{source}: checkpoint from another architecture ({len(state)} tensors, "
                               f"the spec's network has {len(own)})")
        pairs = list(zip(own, state.values()))
    for name, tensor in pairs:
        if tuple(own[name].shape) != tuple(tensor.shape):
            raise NasfaceError(f"{source}: checkpoint from another architecture ({name} has shape "
                               f"{tuple(tensor.shape)} there, {tuple(own[name].shape)} in the spec's network)")
    model.load_state_dict({name: tensor for name, tensor in pairs})


def load_checkpoint(path: str | os.PathLike, spec: ArchSpec | str | None = None) -> tuple[ArchSpec, nn.Module]:
    """The network stored at ``path`` (weights loaded, eval mode) and its spec."""
    path = Path(path)
    state = _read_state(path)
    arch = checkpoint_spec(path, spec)
    model = build_model(arch)
    load_weights(model, state, str(path))
    return arch, model.eval()
