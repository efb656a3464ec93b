"""Block families: one file each, holding the module and its cost rule together."""

from nasface.blocks.base import BlockSpec
from nasface.blocks.bottleneck import BottleneckSpec
from nasface.blocks.embeddings import EMBEDDING_KINDS, EmbeddingSpec
from nasface.blocks.flgc import FLGCSpec
from nasface.blocks.ghost import GhostSpec
from nasface.blocks.heads import HEAD_KINDS, HeadSpec
from nasface.blocks.iresnet import IRSpec
from nasface.blocks.mixconv import MixConvSpec
from nasface.blocks.seesaw import SeesawSpec
from nasface.blocks.shufflev2 import ShuffleV2Spec
from nasface.blocks.varg import VarGSpec

FAMILIES: dict[str, type[BlockSpec]] = {
    spec.family: spec for spec in (BottleneckSpec, VarGSpec, SeesawSpec, FLGCSpec, IRSpec, MixConvSpec, GhostSpec,
                                ShuffleV2Spec)
}

__all__ = ["FAMILIES", "BlockSpec", "BottleneckSpec", "VarGSpec", "SeesawSpec", "FLGCSpec", "IRSpec", "MixConvSpec", "GhostSpec", "ShuffleV2Spec",
           "HeadSpec", "HEAD_KINDS", "EmbeddingSpec", "EMBEDDING_KINDS"]
