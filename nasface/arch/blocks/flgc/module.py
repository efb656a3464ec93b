"""FLGC layers as torch modules (the paper's Algorithm 1) and their deployed form, real group convolutions;
the family's knobs and cost rules are in ``__init__.py``, which says how the two relate."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

META_INIT_STD = 0.01


def balanced_assignment(channels: int, groups: int) -> torch.Tensor:
    return torch.arange(channels) * groups // channels


def balanced_argmax(probabilities: torch.Tensor) -> torch.Tensor:
    """Each row's group, most probable first, no group taking more than rows / groups rows.

    Greedy over (row, group) pairs in decreasing probability: a row takes its best group that
    still has room.  Capacities are those of the balanced start, so every group ends full.
    """
    rows, groups = probabilities.shape
    capacity = torch.bincount(balanced_assignment(rows, groups), minlength=groups).tolist()
    order = torch.argsort(probabilities.detach().flatten(), descending=True).tolist()
    assignment = [-1] * rows
    filled = [0] * groups
    left = rows
    for index in order:
        row, group = divmod(index, groups)
        if assignment[row] < 0 and filled[group] < capacity[group]:
            assignment[row] = group
            filled[group] += 1
            left -= 1
            if not left:
                break
    return torch.tensor(assignment, device=probabilities.device)


def straight_through_one_hot(meta: torch.Tensor, balanced: bool) -> torch.Tensor:
    soft = meta.softmax(dim=1)
    choice = balanced_argmax(soft) if balanced else soft.argmax(dim=1)
    hard = F.one_hot(choice, meta.shape[1]).to(soft.dtype)
    return hard + soft - soft.detach()


class FLGCConv1x1(nn.Module):
    """``balanced``: learnt membership under equal group sizes, so the deployed layer costs exactly
    what the spec counts; otherwise the paper's free argmax, whose groups may come out uneven."""

    def __init__(self, cin: int, cout: int, groups: int, balanced: bool = True):
        super().__init__()
        self.groups = groups
        self.balanced = balanced
        self.weight = nn.Parameter(torch.empty(cout, cin, 1, 1))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.meta_in = nn.Parameter(self._meta_init(cin, groups))
        self.meta_out = nn.Parameter(self._meta_init(cout, groups))

    @staticmethod
    def _meta_init(channels: int, groups: int) -> torch.Tensor:
        balanced = F.one_hot(balanced_assignment(channels, groups), groups).float()
        return balanced + META_INIT_STD * torch.randn(channels, groups)

    def mask(self) -> torch.Tensor:
        select_in = straight_through_one_hot(self.meta_in, self.balanced)    # C x G
        select_out = straight_through_one_hot(self.meta_out, self.balanced)  # N x G
        return select_out @ select_in.t()                     # N x C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask()[:, :, None, None])

    def assignment(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The learnt group of every input channel and of every filter."""
        pick = balanced_argmax if self.balanced else (lambda p: p.argmax(dim=1))
        return pick(self.meta_in.softmax(dim=1)), pick(self.meta_out.softmax(dim=1))

    def deployed_groups(self) -> list[tuple[int, int]]:
        """(input channels, filters) of each group, as the deployed convolution holds them."""
        in_groups, out_groups = self.assignment()
        return [(int((in_groups == g).sum()), int((out_groups == g).sum())) for g in range(self.groups)]


class GroupedPointwise(nn.Module):
    """A trained FLGC layer as a real (possibly uneven) group convolution.

    Input channels are gathered group by group, each group's filters run on their own slice,
    and one final gather puts the filters back in their original order.
    """

    def __init__(self, layer: FLGCConv1x1):
        super().__init__()
        in_groups, out_groups = layer.assignment()
        self.sizes = layer.deployed_groups()
        weight = (layer.weight * layer.mask()[:, :, None, None]).detach()
        in_order = torch.argsort(in_groups, stable=True)
        out_order = torch.argsort(out_groups, stable=True)
        self.register_buffer("in_order", in_order, persistent=False)
        self.register_buffer("out_restore", torch.argsort(out_order), persistent=False)
        self.even = len({size for size in self.sizes}) == 1
        cout = weight.shape[0]
        if self.even:
            cin_g = self.sizes[0][0]
            grouped = torch.cat([weight[out_order[g * (cout // layer.groups):(g + 1) * (cout // layer.groups)]]
                                 [:, in_order[g * cin_g:(g + 1) * cin_g]] for g in range(layer.groups)])
            self.conv = nn.Conv2d(weight.shape[1], cout, 1, groups=layer.groups, bias=False)
            self.conv.weight.data.copy_(grouped)
        else:
            self.convs = nn.ModuleList()
            in_start = out_start = 0
            for cin_g, cout_g in self.sizes:
                if cin_g and cout_g:
                    conv = nn.Conv2d(cin_g, cout_g, 1, bias=False)
                    conv.weight.data.copy_(weight[out_order[out_start:out_start + cout_g]]
                                           [:, in_order[in_start:in_start + cin_g]])
                    self.convs.append(conv)
                in_start += cin_g
                out_start += cout_g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.index_select(1, self.in_order)
        if self.even:
            return self.conv(x).index_select(1, self.out_restore)
        pieces, convs, start = [], iter(self.convs), 0
        for cin_g, cout_g in self.sizes:
            if cin_g and cout_g:
                pieces.append(next(convs)(x[:, start:start + cin_g]))
            elif cout_g:
                # Filters of a group that kept no input channel output zero.
                pieces.append(x.new_zeros(x.shape[0], cout_g, x.shape[2], x.shape[3]))
            start += cin_g
        return torch.cat(pieces, 1).index_select(1, self.out_restore)


def deploy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every FLGC layer converted to its real group convolution."""
    deployed = copy.deepcopy(model)
    for parent in list(deployed.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FLGCConv1x1):
                setattr(parent, name, GroupedPointwise(child))
    return deployed
