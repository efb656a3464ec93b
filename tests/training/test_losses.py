"""Margin softmax heads and distillation losses against their formulas, computed by hand."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nasface.core.errors import NasfaceError
from nasface.training.settings import DISTILLER_KINDS, MARGIN_KINDS
from nasface.training.losses import (AngularDistillation, CombinedMarginLoss, Distiller, MarginDistillation,
                                     NoDistillation, angular_distillation, centres_in_space, make_distiller,
                                     margin_distillation_margins, margin_loss)

S = 64.0


def unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


def planar_head(head: CombinedMarginLoss) -> CombinedMarginLoss:
    """Three 2-D centres at angles 0, pi/2, pi with unequal norms (logits must normalise them)."""
    head.set_centres(torch.tensor([[2.0, 0.0], [0.0, 3.0], [-0.5, 0.0]], dtype=torch.float64), frozen=False)
    return head.double()


def hand_cross_entropy(logit_rows: list[list[float]], labels: list[int]) -> float:
    losses = []
    for row, label in zip(logit_rows, labels):
        log_sum = math.log(sum(math.exp(z - max(row)) for z in row)) + max(row)
        losses.append(log_sum - row[label])
    return sum(losses) / len(losses)


# --- CombinedMarginLoss: logits and loss by hand ------------------------------------


@pytest.mark.parametrize(
    "kind, margin, target_cosine",
    [
        ("arcface", None, lambda t: math.cos(t + 0.5)),
        ("arcface", 0.3, lambda t: math.cos(t + 0.3)),
        ("cosface", None, lambda t: math.cos(t) - 0.35),
        ("cosface", 0.4, lambda t: math.cos(t) - 0.4),
        ("sphereface", None, lambda t: math.cos(1.35 * t)),
    ],
)
def test_logits_and_loss_match_the_formula_on_a_planar_case(kind, margin, target_cosine):
    head = planar_head(margin_loss(kind, num_classes=3, embedding_size=2, margin=margin))
    theta = 0.3
    # Norm 5 embedding at angle 0.3 (label 0) and one at pi/2 + 0.2 (label 1).
    embeddings = torch.tensor([[5 * c for c in unit(theta)], unit(math.pi / 2 + 0.2)], dtype=torch.float64)
    labels = torch.tensor([0, 1])

    expected = [
        [S * target_cosine(theta), S * math.sin(theta), -S * math.cos(theta)],
        [S * math.cos(math.pi / 2 + 0.2), S * target_cosine(0.2), S * math.cos(math.pi / 2 - 0.2)],
    ]
    logits = head.logits(embeddings, labels)
    np.testing.assert_allclose(logits.detach().numpy(), expected, atol=1e-9)
    assert head(embeddings, labels).item() == pytest.approx(hand_cross_entropy(expected, [0, 1]), abs=1e-9)


def test_combined_margin_applies_all_three_margins():
    head = planar_head(CombinedMarginLoss(3, 2, s=30.0, m1=0.9, m2=0.4, m3=0.15))
    theta = 1.1
    logits = head.logits(torch.tensor([unit(theta)], dtype=torch.float64), torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(30.0 * (math.cos(0.9 * theta + 0.4) - 0.15), abs=1e-9)
    assert logits[0, 1].item() == pytest.approx(30.0 * math.cos(math.pi / 2 - theta), abs=1e-9)


def test_per_sample_margins_replace_m2():
    head = planar_head(margin_loss("arcface", 3, 2))
    embeddings = torch.tensor([unit(0.4), unit(0.4)], dtype=torch.float64)
    labels = torch.tensor([0, 0])
    logits = head.logits(embeddings, labels, margins=torch.tensor([0.2, 0.45], dtype=torch.float64))
    assert logits[:, 0].tolist() == pytest.approx([S * math.cos(0.6), S * math.cos(0.85)], abs=1e-9)
    # Non-target logits do not depend on the margin.
    assert logits[:, 1].tolist() == pytest.approx([S * math.sin(0.4)] * 2, abs=1e-9)


def test_target_logit_past_pi_uses_the_monotonic_sphereface_extension():
    head = planar_head(margin_loss("arcface", 3, 2))
    theta = 2.9  # theta + 0.5 = 3.4 > pi: cos would rise again; psi = -cos(phi) - 2 keeps falling
    logits = head.logits(torch.tensor([unit(theta)], dtype=torch.float64), torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(S * (-math.cos(theta + 0.5) - 2), abs=1e-9)


@pytest.mark.parametrize("kind", ["arcface", "cosface", "sphereface"])
def test_target_logit_is_continuous_and_decreasing_in_theta(kind):
    head = planar_head(margin_loss(kind, 3, 2))
    thetas = np.linspace(0.0, math.pi, 2001)
    embeddings = torch.tensor([unit(t) for t in thetas], dtype=torch.float64)
    target = head.logits(embeddings, torch.zeros(len(thetas), dtype=torch.long))[:, 0] / S
    steps = np.diff(target.detach().numpy())
    assert (steps <= 1e-12).all()
    # Largest jump between neighbours 0.0016 rad apart is bounded by the slope (<= m1 * 1).
    assert np.abs(steps).max() < 2 * (thetas[1] - thetas[0])


def test_combined_margin_rejects_bad_parameters():
    with pytest.raises(NasfaceError, match="s must be > 0"):
        CombinedMarginLoss(10, 4, s=0.0)
    with pytest.raises(NasfaceError, match="m2"):
        CombinedMarginLoss(10, 4, m2=-0.1)
    with pytest.raises(NasfaceError, match="m3"):
        CombinedMarginLoss(10, 4, m2=0.0, m3=1.5)
    with pytest.raises(NasfaceError, match="m1"):
        CombinedMarginLoss(10, 4, m1=0.0)
    with pytest.raises(NasfaceError, match="arcface, cosface, sphereface"):
        margin_loss("softmax", 10, 4)
    with pytest.raises(NasfaceError, match=r"\(10, 4\)"):
        CombinedMarginLoss(10, 4).set_centres(torch.zeros(10, 3), frozen=True)


# --- gradients -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["arcface", "cosface", "sphereface"])
def test_margin_loss_passes_gradcheck(kind):
    generator = torch.Generator().manual_seed(0)
    head = margin_loss(kind, num_classes=5, embedding_size=6).double()
    embeddings = torch.randn(4, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    centres = torch.randn(5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    labels = torch.tensor([0, 3, 3, 4])

    def loss(embeddings, centres):
        return torch.func.functional_call(head, {"weight": centres}, (embeddings, labels))

    assert torch.autograd.gradcheck(loss, (embeddings, centres))


@pytest.mark.parametrize("kind", ["arcface", "cosface", "sphereface"])
@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["theta=0", "theta=pi"])
def test_gradients_are_finite_exactly_at_theta_0_and_pi(kind, direction):
    head = margin_loss(kind, num_classes=4, embedding_size=3)
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
    head.set_centres(centres, frozen=False)
    embeddings = (direction * 2.0 * centres[:2]).clone().requires_grad_(True)
    loss = head(embeddings, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(head.weight.grad).all()


def test_gradients_are_finite_under_half_precision_cosines():
    head = margin_loss("sphereface", 3, 2)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    head.set_centres(centres, frozen=False)
    embeddings = centres.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = head(embeddings, torch.tensor([0, 1, 2]))
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()


finite_floats = st.floats(-10.0, 10.0, allow_nan=False, width=32)


@st.composite
def margin_problems(draw):
    batch = draw(st.integers(1, 6))
    classes = draw(st.integers(2, 5))
    dim = draw(st.integers(2, 6))
    embeddings = draw(arrays(np.float32, (batch, dim), elements=finite_floats))
    weight = draw(arrays(np.float32, (classes, dim), elements=finite_floats))
    labels = draw(arrays(np.int64, (batch,), elements=st.integers(0, classes - 1)))
    return embeddings, weight, labels


@settings(max_examples=60, deadline=None)
@given(problem=margin_problems(), kind=st.sampled_from(["arcface", "cosface", "sphereface"]))
def test_loss_and_gradients_are_finite_for_any_input(problem, kind):
    embeddings, weight, labels = problem
    head = margin_loss(kind, weight.shape[0], weight.shape[1])
    head.set_centres(torch.from_numpy(weight), frozen=False)
    embeddings = torch.from_numpy(embeddings).requires_grad_(True)
    loss = head(embeddings, torch.from_numpy(labels))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(head.weight.grad).all()


@settings(max_examples=60, deadline=None)
@given(problem=margin_problems())
def test_arcface_target_logit_never_exceeds_plain_cosine(problem):
    embeddings, weight, labels = problem
    head = margin_loss("arcface", weight.shape[0], weight.shape[1])
    head.set_centres(torch.from_numpy(weight), frozen=False)
    embeddings, labels = torch.from_numpy(embeddings), torch.from_numpy(labels)
    with torch.no_grad():
        target = head.logits(embeddings, labels).gather(1, labels[:, None])
        plain = S * F.linear(F.normalize(embeddings, eps=1e-6), F.normalize(head.weight, eps=1e-6))
    assert (target <= plain.gather(1, labels[:, None]) + 1e-4).all()


# --- angular distillation -------------------------------------------------------------


def test_angular_distillation_is_zero_for_the_same_direction_at_any_scale():
    teacher = torch.tensor([[1.0, 2.0, -3.0], [0.5, 0.0, 0.1]])
    student = teacher * torch.tensor([[7.0], [0.01]])
    assert angular_distillation(student, teacher).item() == pytest.approx(0.0, abs=1e-6)


def test_angular_distillation_is_four_for_antiparallel_embeddings():
    teacher = torch.tensor([[1.0, 2.0, -3.0], [0.5, 0.0, 0.1]])
    assert angular_distillation(-3.0 * teacher, teacher).item() == pytest.approx(4.0, abs=1e-6)


def test_angular_distillation_hand_case_and_teacher_is_detached():
    # Sample 1: 45 degrees apart -> (1 - 1/sqrt2)^2 + (1/sqrt2)^2 = 2 - sqrt2; sample 2: 90 degrees -> 2.
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    student = torch.tensor([[1.0, 1.0], [4.0, 0.0]], requires_grad=True)
    loss = angular_distillation(student, teacher)
    assert loss.item() == pytest.approx((2 - math.sqrt(2) + 2) / 2, abs=1e-6)
    loss.backward()
    assert teacher.grad is None
    assert torch.isfinite(student.grad).all()


def test_angular_distillation_is_finite_for_zero_vectors():
    student = torch.zeros(2, 3, requires_grad=True)
    loss = angular_distillation(student, torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    loss.backward()
    assert loss.item() == pytest.approx(0.5)  # 0 for the zero pair, 1 for unit-vs-zero, mean 0.5
    assert torch.isfinite(student.grad).all()


def test_angular_distillation_passes_gradcheck():
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    teacher = torch.randn(5, 4, dtype=torch.float64, generator=generator)
    assert torch.autograd.gradcheck(lambda s: angular_distillation(s, teacher), (student,))


def test_angular_distiller_adds_alpha_times_the_angular_loss():
    torch.manual_seed(0)
    head = margin_loss("arcface", 6, 4)
    student, teacher = torch.randn(3, 4), torch.randn(3, 4)
    labels = torch.tensor([1, 2, 5])
    distiller = AngularDistillation()
    distiller.prepare(head, teacher_dim=4)
    assert list(distiller.parameters()) == []
    expected = head(student, labels) + 7.0 * angular_distillation(student, teacher)
    assert distiller.loss(student, labels, teacher, head).item() == pytest.approx(expected.item(), rel=1e-6)


def test_angular_distiller_learns_a_projection_when_sizes_differ():
    torch.manual_seed(0)
    head = margin_loss("arcface", 6, 4)
    distiller = AngularDistillation(alpha=1.0)
    distiller.prepare(head, teacher_dim=8)
    (projection,) = distiller.parameters()
    assert projection.shape == (8, 4)
    loss = distiller.loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), torch.randn(3, 8), head)
    loss.backward()
    assert projection.grad is not None and projection.grad.abs().sum() > 0


# --- margin distillation --------------------------------------------------------------


def test_margins_follow_the_paper_hand_case():
    # Teacher cosines to the class centre 0.9, 0.5, 0.1, -0.3 -> a_max = 0.9,
    # m_i = 0.2 + 0.3 * a_i / 0.9, and a negative cosine is floored to m_min.
    cosines = [0.9, 0.5, 0.1, -0.3]
    centres = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[2 * c, 2 * math.sqrt(1 - c * c)] for c in cosines])
    margins = margin_distillation_margins(teacher, torch.zeros(4, dtype=torch.long), centres)
    expected = [0.2 + 0.3 * c / 0.9 for c in cosines[:3]] + [0.2]
    assert margins.tolist() == pytest.approx(expected, abs=1e-6)


def test_margins_use_each_sample_s_own_class_centre():
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[0.0, 1.0], [1.0, 1.0]])  # on centre 1; 45 degrees from both
    margins = margin_distillation_margins(teacher, torch.tensor([1, 1]), centres, m_min=0.1, m_max=0.4)
    assert margins.tolist() == pytest.approx([0.4, 0.1 + 0.3 * math.sqrt(0.5)], abs=1e-6)


def test_margins_are_m_min_when_no_cosine_is_positive():
    centres = torch.tensor([[1.0, 0.0]])
    teacher = torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
    margins = margin_distillation_margins(teacher, torch.tensor([0, 0]), centres)
    assert margins.tolist() == pytest.approx([0.2, 0.2])


@settings(max_examples=60, deadline=None)
@given(problem=margin_problems())
def test_margins_stay_in_range_and_grow_with_teacher_confidence(problem):
    teacher, centres, labels = problem
    teacher, centres, labels = map(torch.from_numpy, (teacher, centres, labels))
    margins = margin_distillation_margins(teacher, labels, centres, m_min=0.2, m_max=0.5)
    assert ((margins >= 0.2 - 1e-6) & (margins <= 0.5 + 1e-6)).all()
    cosines = (F.normalize(teacher, eps=1e-6) * F.normalize(centres[labels], eps=1e-6)).sum(1)
    order = torch.argsort(cosines)
    assert (torch.diff(margins[order]) >= -1e-6).all()


def test_margin_distiller_copies_and_freezes_teacher_centres():
    torch.manual_seed(0)
    teacher_centres = torch.randn(5, 4)
    backbone = torch.nn.Linear(6, 4)
    head = margin_loss("arcface", 5, 4)
    distiller = make_distiller("margin")
    distiller.prepare(head, teacher_dim=4, teacher_centres=teacher_centres)
    assert torch.equal(head.weight, teacher_centres)
    assert not head.weight.requires_grad

    # Even handed to the optimiser (with weight decay), frozen centres must not move.
    optimiser = torch.optim.SGD(
        [*backbone.parameters(), *head.parameters()], lr=0.1, momentum=0.9, weight_decay=5e-4
    )
    backbone_before = backbone.weight.detach().clone()
    for _ in range(2):
        optimiser.zero_grad()
        labels, teacher = torch.randint(0, 5, (8,)), torch.randn(8, 4)
        distiller.loss(backbone(torch.randn(8, 6)), labels, teacher, head).backward()
        optimiser.step()
    assert torch.equal(head.weight, teacher_centres)
    assert not torch.equal(backbone.weight, backbone_before)


def test_margin_distiller_loss_is_arcface_with_the_teacher_margins():
    torch.manual_seed(0)
    teacher_centres = torch.randn(5, 4)
    head = margin_loss("arcface", 5, 4)
    distiller = MarginDistillation(m_min=0.2, m_max=0.5)
    distiller.prepare(head, teacher_dim=4, teacher_centres=teacher_centres)
    student, teacher, labels = torch.randn(6, 4), torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 4, 0])
    margins = margin_distillation_margins(teacher, labels, teacher_centres)
    expected = head(student, labels, margins=margins)
    assert distiller.loss(student, labels, teacher, head).item() == pytest.approx(expected.item(), rel=1e-6)


def test_teacher_centres_keep_their_angles_in_another_space_by_hand():
    # c0 = (1, 0, 0), c1 = (0.6, 0.8, 0): cosine 0.6, rank 2.
    centres = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0]])
    for size in (2, 4):  # >= the rank: the cosine is kept exactly; wider spaces get zero columns
        moved = centres_in_space(centres, size)
        assert moved.shape == (2, size)
        assert torch.allclose(moved @ moved.T, torch.tensor([[1.0, 0.6], [0.6, 1.0]]), atol=1e-6)
    assert not centres_in_space(centres, 4)[:, 2:].any()
    # One dimension: C^T C = [[1.36, 0.48], [0.48, 0.64]] has eigenvalues 1.6 and 0.4; the principal
    # axis (2, 1) / sqrt(5) gives both centres the coordinate 2 / sqrt(5) > 0, so both become the same
    # unit point: cosine 1.
    moved = centres_in_space(centres, 1)
    assert torch.allclose(moved.abs(), torch.ones(2, 1)) and moved[0, 0] == moved[1, 0]
    # 30 identities of a 128-d teacher in a 64-d student: rank 30 <= 64, every cosine kept.
    many = F.normalize(torch.randn(30, 128, generator=torch.Generator().manual_seed(0)), dim=1)
    moved = centres_in_space(many, 64)
    assert torch.allclose(moved @ moved.T, many @ many.T, atol=1e-5)


def test_margin_distiller_across_embedding_sizes_by_hand():
    # A 3-d teacher with orthogonal centres, a 2-d student, ArcFace s = 8.
    teacher_centres = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    head = margin_loss("arcface", 2, 2, s=8.0)
    distiller = MarginDistillation(m_min=0.2, m_max=0.5)
    distiller.prepare(head, teacher_dim=3, teacher_centres=teacher_centres)
    assert head.frozen and torch.allclose(head.weight @ head.weight.T, torch.eye(2), atol=1e-6)
    # Margins in the teacher's space: a = cos(teacher, its centre) = 1 and 0.5 -> m = 0.5 and 0.35.
    teacher = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, math.sqrt(3) / 2]])
    labels = torch.tensor([0, 0])
    # Student 0 sits on its class centre (theta = 0); student 1 on the other centre (theta = pi/2).
    student = head.weight.detach().clone()
    target_0, other_0 = 8 * math.cos(0.5), 0.0
    target_1, other_1 = 8 * math.cos(math.pi / 2 + 0.35), 8.0
    expected = (math.log(math.exp(target_0) + math.exp(other_0)) - target_0
                + math.log(math.exp(target_1) + math.exp(other_1)) - target_1) / 2
    assert distiller.loss(student, labels, teacher, head).item() == pytest.approx(expected, rel=1e-5)


def test_angular_distiller_across_embedding_sizes_by_hand():
    head = margin_loss("arcface", 2, 2, s=8.0)
    distiller = AngularDistillation(alpha=7.0)
    distiller.prepare(head, teacher_dim=3)
    with torch.no_grad():  # the learnt projection, set to the embedding of R^2 into R^3
        distiller.projection.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    student = torch.tensor([[2.0, 0.0], [3.0, 0.0]])
    teacher = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # distances^2 0 and 2: mean 1
    labels = torch.tensor([0, 1])
    expected = head(student, labels).item() + 7.0 * 1.0
    assert distiller.loss(student, labels, teacher, head).item() == pytest.approx(expected, rel=1e-6)


def test_margin_distiller_rejects_mismatched_setups():
    head = margin_loss("arcface", 5, 4)
    with pytest.raises(NasfaceError, match=r"centres have shape \(5, 8\), expected \(5, 4\)"):
        MarginDistillation().prepare(head, teacher_dim=4, teacher_centres=torch.zeros(5, 8))
    with pytest.raises(NasfaceError, match="class centres"):
        MarginDistillation().prepare(head, teacher_dim=4)
    with pytest.raises(NasfaceError, match="arcface"):
        cosface = margin_loss("cosface", 5, 4)
        MarginDistillation().prepare(cosface, teacher_dim=4, teacher_centres=torch.zeros(5, 4))
    with pytest.raises(NasfaceError, match="m_min"):
        MarginDistillation(m_min=0.6, m_max=0.5)
    with pytest.raises(ValueError, match="prepare"):
        MarginDistillation().loss(torch.randn(2, 4), torch.tensor([0, 1]), torch.randn(2, 4), head)


# --- make_distiller -------------------------------------------------------------------


def test_make_distiller_builds_each_kind_with_its_options():
    assert isinstance(make_distiller("none"), NoDistillation)
    assert make_distiller("angular", alpha=3.0).alpha == 3.0
    margin = make_distiller("margin", m_min=0.1, m_max=0.4)
    assert (margin.m_min, margin.m_max) == (0.1, 0.4)


def test_the_settings_name_every_loss_and_only_those():
    """The choices the settings offer (torch-free, for option tables) are the losses that exist."""
    distillers = {cls.name for cls in Distiller.__subclasses__()}
    assert set(DISTILLER_KINDS) == distillers and all(make_distiller(kind).name == kind for kind in DISTILLER_KINDS)
    assert all(isinstance(margin_loss(kind, 5, 4), CombinedMarginLoss) for kind in MARGIN_KINDS)


def test_no_distillation_is_the_plain_margin_loss_without_a_teacher():
    torch.manual_seed(0)
    head = margin_loss("cosface", 5, 4)
    student, labels = torch.randn(3, 4), torch.tensor([0, 1, 4])
    assert make_distiller("none").loss(student, labels, None, head).item() == head(student, labels).item()


def test_make_distiller_rejects_unknown_kinds_and_options():
    with pytest.raises(NasfaceError, match="none, angular, margin"):
        make_distiller("hinton")
    with pytest.raises(NasfaceError, match="alpha"):
        make_distiller("angular", temperature=4.0)
    with pytest.raises(NasfaceError, match="alpha must be >= 0"):
        make_distiller("angular", alpha=-1.0)
