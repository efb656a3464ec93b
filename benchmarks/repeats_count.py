"""Counting a deep stage: the closed form (first block + (repeats - 1) x the repeated one) against a
walk that absorbs every block on its own, as ``nasface.count`` did before, at growing repeats.

    python benchmarks/repeats_count.py [--quick]

One spec (stem 16, dw head, one bottleneck stage of width 64, gdc embedding), its stage repeated
1 to 1,000 times (``nasface.arch.spec.MAX_REPEATS``); both ways give the same figures (checked here and
in tests/arch/test_cost.py). Medians of several counts, the per-block cache warm, in one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import median_seconds, write_result  # noqa: E402
from nasface.arch.cost import CostCounter  # noqa: E402
from nasface.arch.model import _block_cost, cost_counter  # noqa: E402
from nasface.arch.spec import MAX_REPEATS, spec_from_dict  # noqa: E402

BASE = spec_from_dict({"name": "deep", "stem": {"width": 16, "stride": 2}, "head": {"kind": "dw"},
                       "stages": [{"family": "bottleneck", "repeats": 1, "width": 64, "stride": 2, "expansion": 2}],
                       "embedding": {"kind": "gdc", "width": 128, "size": 128}})


def block_by_block(spec) -> CostCounter:
    """Every block absorbed on its own (the stem, head and embedding as ``cost_counter`` counts them)."""
    counter = CostCounter(3, spec.input_size, spec.input_size)
    from nasface.arch.blocks.base import conv_bn_cost

    with counter.in_section("stem"):
        conv_bn_cost(counter, "stem", spec.stem.width, 3, spec.stem.stride, act=spec.stem.act)
    with counter.in_section("head"):
        spec.head.add_cost(counter)
    for _, index, block, _, cout, stride in spec.blocks():
        with counter.in_section(f"stage{index + 1}"):
            counter.absorb(_block_cost(block, counter.shape, cout, stride))
    spec.embedding.add_cost(counter)
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    runs = 5 if args.quick else 31
    rows = []
    for repeats in (1, 10, 100, MAX_REPEATS):
        spec = dataclasses.replace(BASE, stages=(dataclasses.replace(BASE.stages[0], repeats=repeats),))
        closed, walked = cost_counter(spec), block_by_block(spec)
        assert closed.sections == walked.sections and closed.peak_activation_elems == walked.peak_activation_elems
        closed_ms = 1e3 * median_seconds(lambda: cost_counter(spec), runs)
        walked_ms = 1e3 * median_seconds(lambda: block_by_block(spec), runs)
        rows.append({"repeats": repeats, "closed_form_ms": closed_ms, "block_by_block_ms": walked_ms,
                     "ratio": walked_ms / closed_ms})
        print(f"repeats {repeats:>5}: closed form {closed_ms:.3f} ms, block by block {walked_ms:.3f} ms "
              f"({walked_ms / closed_ms:.1f}x)")
    print(f"wrote {write_result('repeats_count', {'quick': args.quick, 'rows': rows}, args.out)}")


if __name__ == "__main__":
    main()
