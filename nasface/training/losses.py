"""Margin-softmax heads and teacher-to-student distillation losses.

Everything here works on embeddings: the backbone's output for a batch, the
class labels, and (for distillation) the teacher's embeddings of the same images,
precomputed and cached, so no teacher network ever runs during a search.

* ``CombinedMarginLoss``: the combined margin softmax of ArcFace / MarginDistillation
  Eq. (1): target logit ``s * (cos(m1 * theta + m2) - m3)``, other logits ``s * cos(theta)``.
* ``angular_distillation``: VarGFaceNet Eq. (5), mean squared distance between the
  unit-normalised teacher and student embeddings.
* ``margin_distillation_margins``: MarginDistillation Eqs. (3)-(4), a per-sample
  ArcFace margin from the teacher's cosine to its class centre.
* ``Distiller`` and its implementations (``NoDistillation``, ``AngularDistillation``,
  ``MarginDistillation``), chosen by name with ``make_distiller``.  Both distillers take a
  teacher of another embedding size: angular through a learnt projection of the student's
  embedding, margin through the teacher's centres carried into the student's space.

Training-loop contract for distillers::

    distiller = make_distiller("margin")
    distiller.prepare(head, teacher_dim=teacher_emb.shape[1], teacher_centres=centres)
    params = [p for m in (backbone, head, distiller) for p in m.parameters() if p.requires_grad]
    ...
    loss = distiller.loss(backbone(x), labels, teacher_emb_of_batch, head)

Over 400 lines on purpose: the margin softmax and the three distillers share the normalisation
and the class centres, and are read together against the papers' equations.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasface.core.errors import NasfaceError
from nasface.training.settings import DISTILLER_KINDS, MARGIN_KINDS

# Norms below this are treated as this when normalising, so a zero vector maps to
# the zero vector with a finite (if large) gradient instead of 0/0.
NORM_EPS = 1e-6


def _normalise(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1, eps=NORM_EPS)


class CombinedMarginLoss(nn.Module):
    """Combined margin softmax (SphereFace m1, ArcFace m2, CosFace m3) with its class centres.

    Holds ``weight`` (num_classes x embedding_size), one centre per training identity;
    centres and embeddings are normalised in ``logits`` so the products are cosines.

    Numerical safety: theta = acos(cos) is taken of the cosine clamped to
    [-1 + eps, 1 - eps] (eps = the dtype's machine epsilon), because acos' derivative
    is infinite at +-1. At theta = 0 or pi the embedding's gradient through cos(theta) is
    zero anyway (cos is extremal there), so the clamp's zero gradient is the right limit.

    Past the monotonic range: cos(m1 * theta + m2) stops decreasing once
    phi = m1 * theta + m2 exceeds pi, which would reward a target moving *away* from
    its centre. We use SphereFace's monotonic extension psi(phi) = (-1)^k cos(phi) - 2k,
    k = floor(phi / pi), which equals cos(phi) for phi <= pi and is continuous and
    decreasing beyond. (insightface's ArcFace uses cos(theta) - m sin(m) past
    theta = pi - m, which is monotonic but jumps at the switch; psi also covers m1 != 1.)
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        s: float = 64.0,
        m1: float = 1.0,
        m2: float = 0.5,
        m3: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise NasfaceError(f"a margin softmax needs at least 2 classes, got {num_classes}")
        if embedding_size < 1:
            raise NasfaceError(f"embedding_size must be >= 1, got {embedding_size}")
        if not s > 0:
            raise NasfaceError(f"margin loss scale s must be > 0, got {s}")
        if not 0 < m1 <= 4:
            raise NasfaceError(f"multiplicative angular margin m1 must be in (0, 4], got {m1}")
        if not 0 <= m2 <= math.pi / 2:
            raise NasfaceError(f"additive angular margin m2 must be in [0, pi/2], got {m2}")
        if not 0 <= m3 < 1:
            raise NasfaceError(f"additive cosine margin m3 must be in [0, 1), got {m3}")
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.s = float(s)
        self.m1 = float(m1)
        self.m2 = float(m2)
        self.m3 = float(m3)
        # insightface's initialisation; the scale is irrelevant since rows are normalised.
        self.weight = nn.Parameter(torch.normal(0.0, 0.01, (num_classes, embedding_size)))

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, "
            f"s={self.s}, m1={self.m1}, m2={self.m2}, m3={self.m3}"
        )

    @property
    def frozen(self) -> bool:
        return not self.weight.requires_grad

    def set_centres(self, centres: Tensor, frozen: bool) -> None:
        """Copy class centres into the head (e.g. a teacher's) and freeze them or not.

        Frozen centres get no gradient, so an optimiser given them leaves them unchanged.
        """
        expected = (self.num_classes, self.embedding_size)
        if tuple(centres.shape) != expected:
            raise NasfaceError(
                f"class centres have shape {tuple(centres.shape)} but the head expects "
                f"{expected} (num_classes x embedding_size)"
            )
        with torch.no_grad():
            self.weight.copy_(centres.to(self.weight))
        self.weight.requires_grad_(not frozen)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """cos(theta) between each embedding and each class centre, (N, num_classes)."""
        cos = F.linear(_normalise(embeddings), _normalise(self.weight))
        # Under autocast the matmul may come out in half precision; do the margin arithmetic
        # in at least float32 so the clamp below stays tight (bfloat16's epsilon would
        # already cap theta's resolution near 0 at 0.125 rad).
        return cos.to(torch.promote_types(cos.dtype, torch.float32))

    def target_cosine_with_margin(self, cos_target: Tensor, m2: Tensor | float) -> Tensor:
        """psi(m1 * theta + m2) - m3 for the target cosines (see the class docstring)."""
        eps = torch.finfo(cos_target.dtype).eps
        theta = torch.acos(cos_target.clamp(-1 + eps, 1 - eps))
        phi = self.m1 * theta + m2
        k = torch.floor(phi / math.pi).detach()
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
        return sign * torch.cos(phi) - 2.0 * k - self.m3

    def logits(self, embeddings: Tensor, labels: Tensor, margins: Tensor | None = None) -> Tensor:
        """Scaled logits (N, num_classes), margin applied to each sample's target class.

        ``margins`` (N,), if given, replaces m2 per sample (MarginDistillation).
        """
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must be (N, {self.embedding_size}), got {tuple(embeddings.shape)}"
            )
        if labels.shape != (embeddings.shape[0],):
            raise ValueError(f"labels must be ({embeddings.shape[0]},), got {tuple(labels.shape)}")
        cos = self.cosine(embeddings)
        if margins is None:
            m2: Tensor | float = self.m2
        else:
            if margins.shape != labels.shape:
                raise ValueError(f"margins must be {tuple(labels.shape)}, got {tuple(margins.shape)}")
            m2 = margins.to(cos.dtype)
        index = labels.long().unsqueeze(1)
        target = self.target_cosine_with_margin(cos.gather(1, index).squeeze(1), m2)
        return self.s * cos.scatter(1, index, target.unsqueeze(1))

    def forward(self, embeddings: Tensor, labels: Tensor, margins: Tensor | None = None) -> Tensor:
        """Mean cross entropy of the margin logits."""
        return F.cross_entropy(self.logits(embeddings, labels, margins), labels.long())


def margin_loss(
    kind: str,
    num_classes: int,
    embedding_size: int,
    s: float = 64.0,
    margin: float | None = None,
) -> CombinedMarginLoss:
    """A margin-softmax head by name; ``margin`` sets the kind's own margin parameter.

    * ``arcface``: m2 = margin (default 0.5), additive angular margin.
    * ``cosface``: m3 = margin (default 0.35; CosFace also reports 0.4), additive cosine margin.
    * ``sphereface``: m1 = margin (default 1.35), multiplicative angular margin. The
      original SphereFace m = 4 needs its annealed mixing with plain softmax to
      train; 1.35 is the value the ArcFace paper trains SphereFace with in the
      combined-margin framework, which is what this head implements.
    """
    if kind == "arcface":
        return CombinedMarginLoss(num_classes, embedding_size, s, m2=0.5 if margin is None else margin)
    if kind == "cosface":
        m3 = 0.35 if margin is None else margin
        return CombinedMarginLoss(num_classes, embedding_size, s, m2=0.0, m3=m3)
    if kind == "sphereface":
        m1 = 1.35 if margin is None else margin
        return CombinedMarginLoss(num_classes, embedding_size, s, m1=m1, m2=0.0)
    raise NasfaceError(f"unknown margin loss '{kind}'; choose one of: {', '.join(MARGIN_KINDS)}")


def angular_distillation(student_emb: Tensor, teacher_emb: Tensor) -> Tensor:
    """VarGFaceNet Eq. (5): mean over the batch of ||t/|t| - s/|s|||^2, in [0, 4].

    The paper writes a leading minus sign, but what it minimises (and calls
    equivalent to ShrinkTeaNet's 1 - cos loss) is this squared distance, = 2 - 2 cos.
    The teacher is a fixed target, so it is detached.
    """
    if student_emb.shape != teacher_emb.shape:
        raise ValueError(
            f"student and teacher embeddings differ in shape: "
            f"{tuple(student_emb.shape)} vs {tuple(teacher_emb.shape)}"
        )
    difference = _normalise(teacher_emb.detach()) - _normalise(student_emb)
    return difference.pow(2).sum(dim=1).mean()


def margin_distillation_margins(
    teacher_emb: Tensor,
    labels: Tensor,
    teacher_centres: Tensor,
    m_min: float = 0.2,
    m_max: float = 0.5,
) -> Tensor:
    """MarginDistillation Eqs. (3)-(4): per-sample ArcFace margins m_i, (N,), no gradient.

    a_i = cos(teacher embedding i, teacher centre of its class) (Eq. 4; the paper calls
    it an angle but defines it as this cosine), a_max = max of a_i over the mini-batch,
    and m_i = m_min + (m_max - m_min) * a_i / a_max (Eq. 3). So the sample the teacher
    places closest to its centre gets m_max and the student is pulled hardest towards
    the centre where the teacher is most confident (the paper's Fig. 1).

    The paper (and its reference code) divides by a_max without guarding signs: a
    negative a_i would give m_i < m_min and a non-positive a_max would flip or blow up
    the scale. We use max(a_i, 0) instead, which changes nothing when all cosines are
    positive (the normal case for a trained teacher) and keeps m_i in [m_min, m_max];
    if no cosine in the batch is positive every sample gets m_min.
    """
    with torch.no_grad():
        centres = teacher_centres[labels.long()]
        cosine_to_centre = (_normalise(teacher_emb) * _normalise(centres)).sum(dim=1)
        a = cosine_to_centre.clamp(min=0.0)
        # All a_i = 0 when a_max = 0, so the floor on the divisor yields m_min for all.
        a_max = a.max().clamp(min=torch.finfo(a.dtype).tiny)
        return m_min + (m_max - m_min) * a / a_max


class Distiller(nn.Module):
    """How the batch loss is formed from the student, its head and the teacher's embeddings.

    Swappable by name (``make_distiller``). A distiller is an ``nn.Module`` so any
    parameters it owns (AngularDistillation's projection) go to the optimiser with
    the backbone's. Call ``prepare`` once, after building the head and before building
    the optimiser.
    """

    name: str = ""

    def prepare(
        self,
        head: CombinedMarginLoss,
        *,
        teacher_dim: int,
        teacher_centres: Tensor | None = None,
    ) -> None:
        """Adapt the head / build parameters for this teacher; default: nothing."""

    def loss(
        self,
        student_emb: Tensor,
        labels: Tensor,
        teacher_emb: Tensor | None,
        head: CombinedMarginLoss,
    ) -> Tensor:
        """Total training loss for the batch."""
        raise NotImplementedError


class NoDistillation(Distiller):
    """The plain margin loss; the teacher is ignored (and may be absent)."""

    name = "none"

    def loss(self, student_emb, labels, teacher_emb, head):
        return head(student_emb, labels)


class AngularDistillation(Distiller):
    """VarGFaceNet Eq. (7): L = L_margin + alpha * L_s (Eq. 5), alpha = 7 in the paper.

    When the student's embedding is smaller or larger than the teacher's, the angle
    between them is undefined; ``prepare`` then adds a learnt linear projection of the
    STUDENT embedding to the teacher's dimension (FitNets-style regressor), used only
    for the distillation term. The margin loss, and evaluation, use the student's own
    embedding. With equal sizes (as in the paper) there is no projection.
    """

    name = "angular"

    def __init__(self, alpha: float = 7.0) -> None:
        super().__init__()
        if not alpha >= 0:
            raise NasfaceError(f"angular distillation weight alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.projection: nn.Linear | None = None

    def prepare(self, head, *, teacher_dim, teacher_centres=None):
        if teacher_dim != head.embedding_size:
            self.projection = nn.Linear(head.embedding_size, teacher_dim, bias=False).to(head.weight)
        else:
            self.projection = None

    def loss(self, student_emb, labels, teacher_emb, head):
        if teacher_emb is None:
            raise ValueError("angular distillation needs the teacher's embeddings of the batch")
        projected = student_emb if self.projection is None else self.projection(student_emb)
        if projected.shape != teacher_emb.shape:
            raise ValueError(
                f"student embedding {tuple(projected.shape)} does not match teacher "
                f"{tuple(teacher_emb.shape)}: call prepare(head, teacher_dim=...) first"
            )
        return head(student_emb, labels) + self.alpha * angular_distillation(projected, teacher_emb)


def centres_in_space(centres: Tensor, size: int) -> Tensor:
    """Unit class centres (classes x teacher dim) carried into a ``size``-d space, angles kept.

    With C = U S V^T (the centres' SVD), C V = U S holds the centres' coordinates along their principal
    axes: the same rows up to a rotation, so the same pairwise cosines.  Its first ``size`` columns are
    kept (zero columns added when ``size`` is wider), the best rank-``size`` approximation of C
    (Eckart-Young).  The cosines are therefore kept exactly whenever ``size`` >= rank(C), which is at most
    the number of classes (30 training identities: any student of 30 dimensions or more), and
    approximately below that; rows are renormalised.
    """
    unit = _normalise(centres.double())
    _, _, vh = torch.linalg.svd(unit, full_matrices=False)
    coordinates = unit @ vh[:size].T
    if coordinates.shape[1] < size:
        coordinates = F.pad(coordinates, (0, size - coordinates.shape[1]))
    return _normalise(coordinates).to(centres.dtype)


class MarginDistillation(Distiller):
    """MarginDistillation: teacher's class centres, frozen, and per-sample margins m_i.

    ``prepare`` copies the teacher's centres into the student head and freezes them
    (the paper's best setting, Table IV); the loss is the head's ArcFace loss with m2
    replaced by ``margin_distillation_margins`` of the batch's teacher embeddings.
    The margins compare the teacher's embeddings with the teacher's centres, in the
    teacher's space.  The paper widens the student's embedding to the teacher's; when
    the sizes differ (a 128-d pretrained teacher, a 512-d student), the head's centres
    are the teacher's carried into the student's space by ``centres_in_space``, which
    keeps the angles between them, so the student learns the teacher's class layout.
    """

    name = "margin"

    def __init__(self, m_min: float = 0.2, m_max: float = 0.5) -> None:
        super().__init__()
        if not 0 <= m_min <= m_max <= math.pi / 2:
            raise NasfaceError(
                f"margin distillation needs 0 <= m_min <= m_max <= pi/2, got m_min={m_min}, m_max={m_max}"
            )
        self.m_min = float(m_min)
        self.m_max = float(m_max)
        # Given again by prepare() on every run (a resumed one too), so not part of a checkpoint.
        self.register_buffer("teacher_centres", None, persistent=False)

    def prepare(self, head, *, teacher_dim, teacher_centres=None):
        if teacher_centres is None:
            raise NasfaceError("margin distillation needs the teacher's class centres; none were given")
        if tuple(teacher_centres.shape) != (head.num_classes, teacher_dim):
            raise NasfaceError(
                f"the teacher's class centres have shape {tuple(teacher_centres.shape)}, expected "
                f"({head.num_classes}, {teacher_dim}) (classes x the teacher's embedding size)"
            )
        if head.m1 != 1.0 or head.m3 != 0.0:
            raise NasfaceError(
                "margin distillation sets ArcFace's additive angular margin per sample; "
                "use the 'arcface' margin loss"
            )
        self.teacher_centres = teacher_centres.detach().clone().to(head.weight)
        same_space = teacher_dim == head.embedding_size
        head.set_centres(teacher_centres if same_space else centres_in_space(teacher_centres, head.embedding_size),
                         frozen=True)

    def loss(self, student_emb, labels, teacher_emb, head):
        if teacher_emb is None:
            raise ValueError("margin distillation needs the teacher's embeddings of the batch")
        if not head.frozen or self.teacher_centres is None:
            raise ValueError(
                "call prepare(head, teacher_centres=...) first: "
                "the head's centres must be the teacher's, frozen"
            )
        margins = margin_distillation_margins(teacher_emb, labels, self.teacher_centres, self.m_min, self.m_max)
        return head(student_emb, labels, margins=margins)


_DISTILLERS: dict[str, type[Distiller]] = {
    NoDistillation.name: NoDistillation,
    AngularDistillation.name: AngularDistillation,
    MarginDistillation.name: MarginDistillation,
}


def make_distiller(kind: str, **options) -> Distiller:
    """A distiller by name: ``none``, ``angular`` (alpha) or ``margin`` (m_min, m_max)."""
    if kind not in _DISTILLERS:
        raise NasfaceError(f"unknown distillation '{kind}'; choose one of: {', '.join(DISTILLER_KINDS)}")
    distiller_class = _DISTILLERS[kind]
    try:
        inspect.signature(distiller_class).bind(**options)
    except TypeError:
        accepted = ", ".join(inspect.signature(distiller_class).parameters) or "no options"
        raise NasfaceError(
            f"distillation '{kind}' got options {sorted(options)}; it accepts: {accepted}"
        ) from None
    return distiller_class(**options)
