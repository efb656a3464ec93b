"""Block families: one file each, holding the module and its cost rule together."""

from nasface.arch.blocks.base import BlockSpec
from nasface.arch.blocks.bottleneck import BottleneckSpec
from nasface.arch.blocks.embeddings import EMBEDDING_KINDS, EmbeddingSpec
from nasface.arch.blocks.flgc import FLGCSpec
from nasface.arch.blocks.ghost import GhostSpec
from nasface.arch.blocks.heads import HEAD_KINDS, HeadSpec
from nasface.arch.blocks.iresnet import IRSpec
from nasface.arch.blocks.mixconv import MixConvSpec
from nasface.arch.blocks.seesaw import SeesawSpec
from nasface.arch.blocks.shufflev2 import ShuffleV2Spec
from nasface.arch.blocks.varg import VarGSpec

FAMILIES: dict[str, type[BlockSpec]] = {
    spec.family: spec for spec in (BottleneckSpec, VarGSpec, SeesawSpec, FLGCSpec, IRSpec, MixConvSpec, GhostSpec,
                                ShuffleV2Spec)
}

__all__ = ["FAMILIES", "BlockSpec", "BottleneckSpec", "VarGSpec", "SeesawSpec", "FLGCSpec", "IRSpec", "MixConvSpec", "GhostSpec", "ShuffleV2Spec",
           "HeadSpec", "HEAD_KINDS", "EmbeddingSpec", "EMBEDDING_KINDS"]
