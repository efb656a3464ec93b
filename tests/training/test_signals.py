"""Every ranking signal on a case whose value is known by hand, and the zero-cost scores' promise to
leave the network (and torch's random state) as they found them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nasface.training.signals import (SIGNALS, grad_norm, linear_cka, loss_signals, naswot, oriented, snip,
                                      synflow, trivial_signals, zero_cost_signals, zico)
from nasface.training.proxy import build_student
from nasface.training.student import proxy_spec
from tests.factories import SMALL_NET


def test_loss_signals_of_a_recorded_trace():
    trace = [float(v) for v in range(1, 11)]  # losses 1, 2, ..., 10
    scores = loss_signals(trace)
    assert scores["loss_sum"] == 55.0
    # a window of one step (a tenth of ten) ending at 25 % (round(2.5) = 2), 50 %, 75 % and the end
    assert (scores["loss_at_25"], scores["loss_at_50"], scores["loss_at_75"], scores["loss_at_100"]) == (2, 5, 8, 10)
    assert loss_signals([0.0, 10.0])["loss_ema"] == pytest.approx(1.0)       # 0.9 * 0 + 0.1 * 10
    assert loss_signals([3.0] * 50)["loss_ema"] == pytest.approx(3.0)
    assert loss_signals([4.0] * 20 + [2.0] * 20)["loss_at_100"] == 2.0       # the last tenth: 4 steps of 2
    assert loss_signals([]) == {}


def test_linear_cka_by_hand_and_its_invariances():
    # centred x = (-1, 0, 1), y = (2, -1, -1) / 3: |y'x|^2 = 1, |x'x| = 2, |y'y| = 2/3 -> 1 / (4/3)
    assert linear_cka([[1.0], [2.0], [3.0]], [[1.0], [0.0], [0.0]]) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, 3.0 * x @ rotation) == pytest.approx(1.0)
    wider = np.hstack([x @ rotation, np.zeros((200, 4))])  # another width: still the same representation
    assert linear_cka(x, wider) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(200, 16))) < 0.15


class _TwoLinear(nn.Module):
    """flatten -> 3 -> 2 (no bias) -> 2 -> 1 (no bias), on 3 x 1 x 1 inputs."""

    def __init__(self, first, second):
        super().__init__()
        self.first = nn.Linear(3, 2, bias=False)
        self.second = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.first.weight.copy_(torch.tensor(first, dtype=torch.float32))
            self.second.weight.copy_(torch.tensor(second, dtype=torch.float32))

    def forward(self, x):
        return self.second(self.first(x.flatten(1)))


def test_synflow_by_hand():
    # |W1| row sums 3 and 2, |W2| = (3, 1): R = 3 * 3 + 1 * 2 = 11; each of the two layers
    # contributes sum(theta * dR/dtheta) = R (R is linear in each layer), so synflow = 2R = 22
    net = _TwoLinear([[1, -2, 0], [0, 1, 1]], [[3, -1]])
    assert synflow(net, 1) == pytest.approx(math.log10(22.0))
    assert net.first.weight[0, 1].item() == -2.0  # the network itself is untouched


def test_naswot_by_hand():
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False), nn.ReLU())
    with torch.no_grad():
        net[1].weight.copy_(torch.eye(2))
    # codes (1, 0) and (1, 1): K = [[2, 1], [1, 2]], det 3
    images = torch.tensor([[1.0, -1.0], [1.0, 1.0]]).reshape(2, 2, 1, 1)
    assert naswot(net, images) == pytest.approx(math.log(3.0))


def test_zico_snip_and_grad_norm_by_hand():
    # element 1 of the gradient varies over the two batches (|g| mean 2, std 1), element 2 does not
    gradients = [[torch.tensor([1.0, 2.0])], [torch.tensor([3.0, 2.0])]]
    assert zico(gradients) == pytest.approx(math.log(2.0))
    assert zico([[torch.ones(3)], [torch.ones(3)]]) is None  # nothing varies: no score
    net = _TwoLinear([[1, -2, 0], [0, 1, 1]], [[3, -1]])
    grads = [torch.ones(2, 3), torch.tensor([[2.0, 2.0]])]
    assert snip(net, grads) == pytest.approx(5.0 + 8.0)        # sum |w| * 1 + |3 * 2| + |-1 * 2|
    assert grad_norm(grads) == pytest.approx(math.sqrt(6) + math.sqrt(8))


def test_zero_cost_scores_leave_the_network_and_the_random_state_alone():
    spec = proxy_spec(SMALL_NET, 32)
    torch.manual_seed(0)
    model = build_student(SMALL_NET, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 112, 112, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(8), 5)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    scores = zero_cost_signals(model, images, labels, 8, spec.embedding.size, 32, "arcface", 8.0, 0)
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(scores) == {"synflow", "naswot", "zico", "grad_norm", "snip"}
    assert all(value is not None and math.isfinite(value) for value in scores.values())
    again = zero_cost_signals(model, images, labels, 8, spec.embedding.size, 32, "arcface", 8.0, 0)
    assert again == scores  # deterministic


def test_orientation_and_trivial_baselines():
    assert oriented("loss_sum", 3.0) == -3.0 and oriented("accuracy", 0.9) == 0.9 and oriented("zico", None) is None
    assert trivial_signals({"flops": 1000, "params": 100}) == {"log_flops": 3.0, "log_params": 2.0}
    assert {s.kind for s in SIGNALS.values()} == {"training", "zero-cost", "trivial"}
