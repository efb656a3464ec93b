"""The facts of ``nasface data`` and ``nasface score`` as lines a person reads (``--json`` gives them raw)."""

from __future__ import annotations

import math


def tar_text(tar: float | None, far: float) -> str:
    """TAR at a FAR, or why these pairs cannot measure it."""
    if tar is not None:
        return f"{tar:.4f} at FAR {far:g}"
    return (f"not measured at FAR {far:g}: the pairs hold fewer than {math.ceil(1 / far):,} different-identity "
            f"pairs, so not even one false accept is allowed (a larger verification set measures it)")


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_value, value)) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{key} {_value(item)}" for key, item in value.items()) if value else "none"
    return str(value)


def fact_lines(facts: dict) -> list[tuple[str, str]]:
    """(label, text) for each fact that holds something; one that does not apply (None) is left out."""
    rows = []
    for key, value in facts.items():
        if value is None:
            continue
        if key == "image_size" and isinstance(value, (list, tuple)) and len(value) == 2:
            rows.append(("image size", f"{value[1]}x{value[0]} pixels"))
        else:
            rows.append((key.replace("_", " "), _value(value)))
    return rows


def score_lines(facts: dict) -> list[tuple[str, str]]:
    """``nasface score``'s metrics: what was measured first, how it was trained, then the signals."""
    if facts.get("status") != "ok":
        return [("status", str(facts.get("status"))), ("reason", str(facts.get("reason")))]
    rows = [("accuracy", f"{facts['accuracy']:.4f} ± {facts['accuracy_std']:.4f} on {facts['pairs']:,} pairs"),
            ("TAR", tar_text(facts.get("tar_at_far"), facts["far"])),
            ("training", f"{facts['steps']:,} steps of {facts['batch_size']} at {facts['resolution']}x"
                         f"{facts['resolution']} on {facts['device']}, distillation {facts['distill']}")]
    if facts.get("final_loss") is not None:
        rows.append(("final loss", f"{facts['final_loss']:.4f}"))
    if facts.get("images_per_second"):
        rows.append(("speed", f"{facts['images_per_second']:.1f} images/s"))
    seconds = {"training": facts.get("train_seconds"), "verification": facts.get("eval_seconds"),
               "zero-cost signals": facts.get("zero_cost_seconds"), "in all": facts.get("wall_seconds")}
    rows.append(("time", ", ".join(f"{what} {value:.1f}s" for what, value in seconds.items() if value is not None)))
    if facts.get("learnt_structure"):
        rows.append(("learnt structure", _value(facts["learnt_structure"])))
    for name, value in (facts.get("signals") or {}).items():
        if name not in ("accuracy", "tar_at_far"):  # shown above
            rows.append((f"signal {name}", "n/a" if value is None else f"{value:.4g}"))
    return rows
