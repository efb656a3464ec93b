"""Analytic cost count vs fvcore vs ptflops, per preset (issue: cost model must be >= 1000x faster).

    python benchmarks/cost_speed.py [--quick]

The analytic count reads the spec only; it is timed cold (its per-block cache cleared before
each count, the ratio quoted) and warm (blocks already counted, as in a long search).  fvcore and ptflops need the built model and a traced /
dispatched forward pass at 112x112; their time includes building the model from the spec, as a
search using them would have to.  Medians of several runs, measured in one process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import nasface  # noqa: E402
from benchmarks._common import median_seconds, write_result  # noqa: E402
from nasface.arch.model import _block_cost  # noqa: E402


def analytic_cold(spec) -> None:
    """A first count: no block of the spec has been counted before."""
    _block_cost.cache_clear()
    nasface.count(spec)


def fvcore_count(spec) -> None:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(nasface.build_model(spec).eval(), torch.zeros(1, 3, 112, 112))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.total()


def ptflops_count(spec) -> None:
    from ptflops import get_model_complexity_info

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        get_model_complexity_info(nasface.build_model(spec), (3, 112, 112), as_strings=False, backend="aten",
                                  print_per_layer_stat=False, verbose=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, lighter presets only")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    presets = [p for p in nasface.preset_names() if not (args.quick and p.startswith("iresnet"))]
    repeats_fast, repeats_slow = (200, 3) if args.quick else (1000, 5)
    rows = []
    for name in presets:
        spec = nasface.load_spec(name)
        analytic = median_seconds(lambda: analytic_cold(spec), repeats_fast)
        analytic_warm = median_seconds(lambda: nasface.count(spec), repeats_fast)
        fvcore = median_seconds(lambda: fvcore_count(spec), repeats_slow)
        ptflops = median_seconds(lambda: ptflops_count(spec), repeats_slow)
        rows.append({"preset": name, "analytic_ms": analytic * 1e3, "analytic_cached_ms": analytic_warm * 1e3,
                     "fvcore_ms": fvcore * 1e3,
                     "ptflops_ms": ptflops * 1e3, "fvcore_ratio": fvcore / analytic,
                     "ptflops_ratio": ptflops / analytic})
        print(f"{name:24s} analytic {analytic * 1e3:6.3f} ms (cached blocks {analytic_warm * 1e3:6.3f} ms)   fvcore {fvcore * 1e3:9.1f} ms "
              f"({fvcore / analytic:7.0f}x)   ptflops {ptflops * 1e3:9.1f} ms ({ptflops / analytic:7.0f}x)")
    median_ratio = statistics.median(row["fvcore_ratio"] for row in rows)
    path = write_result("cost_speed", {"quick": args.quick, "rows": rows,
                                       "median_fvcore_ratio": median_ratio,
                                       "min_fvcore_ratio": min(row["fvcore_ratio"] for row in rows),
                                       "goal": "analytic >= 1000x faster than fvcore per architecture"})
    print(f"median speed-up over fvcore: {median_ratio:.0f}x (goal >= 1000x); wrote {path}")


if __name__ == "__main__":
    main()
