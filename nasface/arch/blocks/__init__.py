"""Block families: one package each, its one home (knobs, checks, cost rule, module, deployed form).

A family's ``__init__.py`` is its spec side (a ``BlockSpec``: knobs, checks, cost rule) and imports no
torch; its ``module.py`` holds the ``nn.Module`` and the deployed form, imported by the spec's
``build`` (and by a name of it looked up on the package, ``base.module_side``).  So a spec is read,
checked and counted (``nasface count``, a search's budget check) without torch, and a family is still
found in one place.  ``heads``, ``embeddings`` (the two ends of a network) and ``base`` (what the
families share) are split the same way.
"""

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
