"""nasface: neural-architecture search and design-space explorer for lightweight face recognition."""

from nasface.arch.model import build_model, count
from nasface.arch.spec import ArchSpec, dump_spec, load_spec, preset_names, save_spec, spec_from_dict, spec_to_dict
from nasface.core import moved
from nasface.core.errors import NasfaceError

moved.install()  # the module paths of the flat layout keep working (nasface.report, nasface.model, ...)

__version__ = "0.1.0"

__all__ = ["NasfaceError", "ArchSpec", "FaceEmbeddingNet", "build_model", "count", "load_spec",
           "save_spec", "dump_spec", "spec_from_dict", "spec_to_dict", "preset_names"]


def __getattr__(name: str):
    """``FaceEmbeddingNet``, the torch module, is imported on first use: ``import nasface`` loads no torch."""
    if name == "FaceEmbeddingNet":
        from nasface.arch.network import FaceEmbeddingNet

        return FaceEmbeddingNet
    raise AttributeError(f"module 'nasface' has no attribute {name!r}")
