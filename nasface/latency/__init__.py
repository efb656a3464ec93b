"""Latency on a real runtime: measured (``measure``), tabled per part (``LatencyTable``) and predicted
(``LatencyPredictor``), keyed by runtime, precision, threads and CPU so figures are never mixed.

- ``target``: what a figure is of (``onnxruntime:fp32:1``); the latency budget's units are
  ``nasface.arch.budget.parse_latency``'s;
- ``parts``: the parts of a network a table holds, and their keys;
- ``measure``: export (deployed, BatchNorm folded) and time on onnxruntime or OpenVINO, fp32 or int8;
- ``table``: the append-only table and the predictor (a sum and a fitted line; no torch runs);
- ``build``: filling a table for a space's networks.

Latency as a search's budget and objective is ``nasface.search.latency`` (it reads the study).
"""

import importlib

# Each name is imported from its module on first use: the command line and the search's option table
# read ``nasface.latency.target`` without the specs (and torch) behind the others.
_EXPORTS = {"DEFAULT_TARGET": "target", "LatencyTarget": "target",
            "Measurement": "measure", "measure": "measure", "LatencyPredictor": "table", "LatencyTable": "table",
            "MissingParts": "table", "build_table": "build"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nasface.latency' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nasface.latency.{_EXPORTS[name]}"), name)
