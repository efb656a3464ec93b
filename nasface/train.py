"""The names ``nasface.train`` had, re-exported from ``nasface.training`` while the importers move
there (issue #27: this module goes once they have)."""

from nasface.training.loop import (CandidateFailed, LoopState, loop_checkpoint, make_loop_state, restore_loop,
                                   train_loop)
from nasface.training.proxy import BudgetRun, score, score_budgets
from nasface.training.settings import (LoopSettings, Optimisation, ProxyBudget, StepDecaySchedule, Teacher,
                                       TeacherNetwork, TeacherTargets, WarmupStableDecay, check_device,
                                       default_warmup, resolve_device)
from nasface.training.student import ResizedInput, build_student, proxy_spec

__all__ = [
    "BudgetRun", "CandidateFailed", "LoopSettings", "LoopState", "Optimisation", "ProxyBudget", "ResizedInput",
    "StepDecaySchedule", "Teacher", "TeacherNetwork", "TeacherTargets", "WarmupStableDecay", "build_student",
    "check_device", "default_warmup", "loop_checkpoint", "make_loop_state", "proxy_spec", "resolve_device",
    "restore_loop", "score", "score_budgets", "train_loop",
]
