"""Does the brief training learn?  Untrained vs default proxy vs 4x longer, on synthetic and ORL.

    python benchmarks/proxy_learning.py [--quick] [--preset mobilefacenet]

Scores the same network (same seed, same initial weights) after 0 steps, the default proxy
budget and four times as many steps, on held-out identities; reports accuracy (10-fold) and
TAR at FAR 1e-3 where the pairs allow it (synthetic: 3000 pairs; ORL: 600, so TAR@1e-3 is None).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from nasface.search import DataSettings, load_proxy_data  # noqa: E402
from nasface.training.proxy import score  # noqa: E402
from nasface.training.settings import ProxyBudget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the default budget and untrained")
    parser.add_argument("--preset", default="mobilefacenet")
    args = parser.parse_args()
    default = ProxyBudget(distill="none", device="cpu")
    steps_list = [0, default.steps] if args.quick else [0, default.steps, 4 * default.steps]
    cache = Path(tempfile.gettempdir()) / "nasface-bench-cache"
    rows = []
    for source in ("synthetic", "orl"):
        data = load_proxy_data(DataSettings.for_source(source), 0, cache)
        for steps in steps_list:
            result = score(args.preset, data.train, data.pairs, dataclasses.replace(default, steps=steps))
            rows.append({"source": source, "steps": steps, "accuracy": result["accuracy"],
                         "tar_at_far": result["tar_at_far"], "final_loss": result["final_loss"],
                         "wall_seconds": result["wall_seconds"]})
            tar = "-" if result["tar_at_far"] is None else f"{result['tar_at_far']:.3f}"
            print(f"{source:9s} {args.preset} {steps:4d} steps: accuracy {result['accuracy']:.4f}, TAR@1e-3 {tar}, "
                  f"{result['wall_seconds']:.0f} s", flush=True)
    path = write_result("proxy_learning", {"preset": args.preset, "quick": args.quick,
                                           "proxy": dataclasses.asdict(default), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
