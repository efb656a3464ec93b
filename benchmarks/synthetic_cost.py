"""What a harder synthetic task costs: rendering the proxy's faces, ``synthetic`` vs ``synthetic-hard``.

    python benchmarks/synthetic_cost.py [--faces 3000] [--repeats 3]

A candidate's proxy training does the same work on either source (same steps, batch and image
size); what differs is rendering the proxy's faces (once per data key, shared by every candidate
and the teacher).  Renders the same identities and images from both sources, taking turns (and
which goes first) in one process so machine noise hits both alike; reports the median CPU seconds
per 1,000 faces and their ratio.  Writes results/synthetic_cost.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from nasface.data import open_source  # noqa: E402

SOURCES = ("synthetic", "synthetic-hard")
PER_IDENTITY = 10  # the proxy's images per identity (nasface.search.config.DataSettings)


def render_seconds(spec: str, identities: int) -> float:
    source = open_source(spec, num_identities=identities, per_identity=PER_IDENTITY)
    start = time.process_time()
    source.load()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=3000, help="faces per render (the proxy's 300 x 10)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    identities = max(args.faces // PER_IDENTITY, 1)
    seconds = {spec: [] for spec in SOURCES}
    for repeat in range(args.repeats):
        for spec in (SOURCES if repeat % 2 == 0 else SOURCES[::-1]):
            seconds[spec].append(render_seconds(spec, identities))
    per_thousand = {spec: 1000 * statistics.median(values) / (identities * PER_IDENTITY)
                    for spec, values in seconds.items()}
    ratio = per_thousand["synthetic-hard"] / per_thousand["synthetic"]
    for spec in SOURCES:
        print(f"{spec}: {per_thousand[spec]:.2f} CPU s per 1,000 faces")
    print(f"synthetic-hard / synthetic: {ratio:.2f}x (load average {os.getloadavg()[0]:.1f})")
    path = write_result("synthetic_cost", {"faces": identities * PER_IDENTITY, "repeats": args.repeats,
                                           "cpu_seconds_per_1000_faces": per_thousand, "ratio": ratio,
                                           "load_average": os.getloadavg()[0]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
