"""Measuring latency: a network (or one part of it) exported as a device runs it, timed on a real runtime.

The network is exported as ``nasface onnx`` exports it (FLGC deployed, BatchNorm folded), at batch 1
with a fixed input shape, and run by onnxruntime or OpenVINO with a given number of threads.  int8 is
onnxruntime's static quantisation (QDQ, per-channel s8 weights, u8 activations) calibrated on faces of
the study's source; OpenVINO runs the same QDQ model.

Run times depend on the data as well as the shapes (onnxruntime's PReLU branches on each element's
sign: it takes about three times as long on white noise as on a face's smooth maps), so a network runs
on a face of the study's source and a part on a network's activations at its own size, drawn from
those faces by a reference network and mixed into its channel count (``activation_maps``): never on
noise.

A part is timed in context: run alone, its maps are reordered into the runtime's layout at both of
its ends (and, for int8, quantised in and dequantised out), which inside a network happens only at the
network's ends, and each run pays the runtime's call; OpenVINO's lone parts summed to 1.5x the whole
network that way.  So a part runs behind a fixed lead (a 1x1 convolution on its input, as the
projection that ends the block before it) and its figure is the time of lead and part less the time of
the lead alone, timed in the same turn: the call, the input's layout change and the input's quantising
fall on both and cancel.  What is left besides the part is the change at its output less the one at its
input, and summed along a network these telescope to the network's own ends.  The stem takes the
network's input, so it runs alone.

A part a stage repeats (a block of stride 1 with as many channels out as in: ``copies``) runs as
``CHAIN_COPIES`` copies behind the lead, each with its own weights as a stage's repeats have, and its
figure is the chain less the lead, over the copies.  A lone part's figure moves by some 15 % from one
sitting to the next on a shared machine, different parts different ways, and a network of one part
repeated nine times carries that movement whole; the chain times the part as its stage runs it, with
four times the signal against the lead's (between sittings the chained parts moved 7-11 %, the same
parts alone 13-19 %; BENCHMARKS.md).

On a shared machine single runs mostly measure the neighbours' load, so a figure is the minimum of N
runs after a warm-up (the median is kept as a check), and the models compared in one call are run in
turn, one run each round, so that load falls on all of them alike.  Networks are timed ``GROUP`` at a
time, and a group of fewer (one network, or the last few) is filled with fixed ``companions``: timed
alone, its runs back to back, a network read 7.6-9.2 % apart (the spread of the logs) from one sitting to
the next (4.6-6.2 % over 400 runs), beside the companions 2.7-4.1 % and in a group of eight 2.9-4.6 %,
on onnxruntime fp32 in one window (``benchmarks/latency_alone.py``); and a table's networks, on which its
correction is fitted and its margin set, are measured in groups of eight.  On one thread a run is timed by the
CPU time the process spends on it, which is its latency on a quiet machine and leaves out the time the
neighbours hold the core (at a load of 10 on 2 cores the minimum wall time of a 12 ms network read
19 ms, its CPU time 11.8 ms); on several threads CPU time adds up over them, so wall time is used.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasface.latency.parts import Part
from nasface.latency.target import LatencyTarget
from nasface.arch.spec import ArchSpec

WARMUP_RUNS = 10
TIMED_RUNS = 50
REFERENCE_NETWORK = "mobilefacenet"  # whose activations a part's input is drawn from (``activation_maps``)
CHAIN_COPIES = 4  # copies a chainable part is timed as (4 and 8 scored alike in probe sittings; 8 takes longer)
GROUP = 8  # networks, or parts, timed in turn at once
COMPANY_SEED = 7  # which random networks of the default space fill a short group of networks (``companions``)
CALIBRATION_BATCHES = 8
INPUT_NAME = "x"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    ms: float  # the minimum over the timed runs: the figure every table and report uses
    median_ms: float
    runs: int


@dataclass(frozen=True)
class Measurement:
    """One network measured; ``key`` is the target on this machine plus the input size."""

    name: str
    ms: float
    median_ms: float
    runs: int
    key: dict

    def to_dict(self) -> dict:
        return {"name": self.name, "ms": self.ms, "median_ms": self.median_ms, "runs": self.runs, "key": self.key}


# -- what is exported -------------------------------------------------------------------------------------
def part_module(part: Part):
    """The part as a torch module, in the form a device runs it (a deployed block)."""
    from nasface.arch.blocks.base.module import conv_bn

    if part.kind == "stem":
        return conv_bn(3, part.cout, 3, part.stride, act=part.spec.act)
    if part.kind == "head":
        return part.spec.build(part.cin)
    if part.kind == "block":
        return part.spec.deployed(part.spec.build(part.cin, part.cout, part.stride))
    return part.spec.build(part.cin, part.size)


def onnx_model(module, shape: tuple[int, ...]) -> bytes:
    """``module`` as deployed (BatchNorm folded, eval mode) in ONNX, for one fixed input shape."""
    import torch

    from nasface.arch.onnx_export import _quiet_exporter, fold_batchnorms

    module = module.eval()
    fold_batchnorms(module)
    buffer = io.BytesIO()
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(module, (torch.zeros(shape),), buffer, input_names=[INPUT_NAME], output_names=["y"],
                          dynamo=False, opset_version=17)
    return buffer.getvalue()


def with_fixed_weights(build: Callable[[], object], seed: int = 0):
    """``build()`` drawing its initial weights from ``seed``, the caller's random state left as it was.

    A network's run time depends on its weights (PReLU branches on each element's sign), by up to a fifth
    between two draws of the same network (BENCHMARKS.md), so a candidate checked before training and
    measured again on the front, or a part timed in another sitting, must be the same module each time."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def network_onnx(spec: ArchSpec) -> bytes:
    """``spec`` deployed, with the same initial weights every time (``with_fixed_weights``)."""
    from nasface.arch.model import build_model, deploy

    model = with_fixed_weights(lambda: build_model(spec))
    return onnx_model(deploy(model.eval()), (1, 3, spec.input_size, spec.input_size))


def lead_module(channels: int):
    """The fixed lead a part runs behind when it is timed: a 1x1 convolution on its input channels, like
    the projection that ends the block before it in a network (the same weights every time)."""
    import torch

    return with_fixed_weights(lambda: torch.nn.Conv2d(channels, channels, 1), seed=channels)


def has_lead(part: Part) -> bool:
    """Every part but the stem, which takes the network's input, is timed behind a lead."""
    return part.kind != "stem"


def copies(part: Part, chain: int = CHAIN_COPIES) -> int:
    """How many copies of ``part`` run when it is timed: ``chain`` for a part a stage repeats (a block
    that keeps its channels and its map size), one for any other."""
    chainable = part.kind == "block" and part.stride == 1 and part.cin == part.cout
    return chain if chainable else 1


def part_onnx(part: Part, chain: int = CHAIN_COPIES) -> bytes:
    """The part as it is timed: its copies (``copies``) behind its lead (``lead_onnx`` is the lead alone),
    the stem alone.  The first copy's weights are the lone part's, the others' drawn after them."""
    import torch

    modules = with_fixed_weights(lambda: [part_module(part) for _ in range(copies(part, chain))])
    if not has_lead(part):
        return onnx_model(modules[0], part_shape(part))
    return onnx_model(torch.nn.Sequential(lead_module(part.cin), *modules), part_shape(part))


def lead_onnx(part: Part) -> bytes:
    return onnx_model(lead_module(part.cin), part_shape(part))


def node_count(model: bytes) -> int:
    """The operators ``model`` runs: constants, which the runtime folds, left out, and identities, which it
    removes (the exporter writes one for each parameter equal to an earlier one, as a chain's copies' PReLU
    slopes are at their initial value)."""
    import onnx

    return sum(node.op_type not in ("Constant", "Identity") for node in onnx.load_from_string(model).graph.node)


def part_shape(part: Part) -> tuple[int, int, int, int]:
    return 1, part.cin, part.size, part.size


# -- calibration ------------------------------------------------------------------------------------------
def calibration_faces(source: str = "synthetic", count: int = CALIBRATION_BATCHES) -> np.ndarray:
    """``count`` faces of ``source`` as the networks take them: N x 3 x 112 x 112, (pixel - 127.5) / 128."""
    from nasface.data import open_source

    opened = open_source(source)
    people = min(count, len(opened.identities()))
    faces = opened.load(identities=list(range(people)), per_identity=-(-count // people), seed=0).images[:count]
    return ((faces.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2).copy()


def activation_maps(shape: tuple[int, ...], faces: np.ndarray) -> list[np.ndarray]:
    """Batches of one in ``shape`` as a part meets them inside a network, one per face: the faces
    themselves where they fit; at a map size the reference network makes (``REFERENCE_NETWORK``, at its
    fixed initial weights, on the faces: 56, 28, 14 and 7 px), its last activations of that size, their
    channels mixed into ``shape[1]`` by a fixed random matrix, at unit spread; at any other size
    ``convolved_face_maps``.

    onnxruntime's PReLU branches on each element's sign, so a part's time depends on how the signs of
    its input lie, and no simple construction stands for a network's: an FLGC block that ran 0.57 ms a
    copy inside its network ran 0.44 ms on the convolved face map and 0.58 ms on its network's own
    activations, and the predictor built on the reference's maps put 97-99 % of networks within +-10 %
    where the convolved maps put 89 % in the same sittings (BENCHMARKS.md)."""
    _, channels, height, width = shape
    if tuple(faces.shape[1:]) == (channels, height, width):
        return [face[None] for face in faces]
    reference = reference_activations(faces).get(height)
    if reference is None or height != width:
        return convolved_face_maps(shape, faces)
    return mixed_channels(reference, channels)


def mixed_channels(maps: np.ndarray, channels: int) -> list[np.ndarray]:
    """Batches of one: each of the N x C x H x W ``maps`` with its channels mixed into ``channels`` by a
    fixed random matrix (drawn from ``channels``), at unit spread."""
    mixing = np.random.default_rng(channels).standard_normal((channels, maps.shape[1])).astype(np.float32)
    batches = []
    for one in maps:
        mixed = np.einsum("ck,khw->chw", mixing, one)  # einsum, not BLAS: see convolved_face_maps
        batches.append((mixed / max(float(mixed.std()), 1e-6))[None].astype(np.float32))
    return batches


def reference_activations(faces: np.ndarray) -> dict[int, np.ndarray]:
    """map size -> the last activations of that size (N x C x size x size) of ``REFERENCE_NETWORK`` at
    its fixed initial weights, run on ``faces``; computed once for the same faces."""
    return _reference_activations(faces.astype(np.float32).tobytes(), faces.shape)


@functools.lru_cache(maxsize=4)
def _reference_activations(data: bytes, shape: tuple[int, ...]) -> dict[int, np.ndarray]:
    import torch

    from nasface.arch.model import build_model, deploy
    from nasface.arch.spec import load_spec

    spec = load_spec(REFERENCE_NETWORK)
    faces = np.frombuffer(data, dtype=np.float32).reshape(shape)
    if faces.shape[2:] != (spec.input_size, spec.input_size):
        return {}
    network = deploy(with_fixed_weights(lambda: build_model(spec)).eval())
    found = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # no pool of threads left spinning (and counted) when the timing starts
    try:
        with torch.no_grad():
            maps = network.head(network.stem(torch.from_numpy(faces.copy())))
            found[maps.shape[-1]] = maps
            for block in (block for stage in network.stages for block in stage):
                maps = block(maps)
                found[maps.shape[-1]] = maps
    finally:
        torch.set_num_threads(threads)
    return {size: maps.numpy() for size, maps in found.items()}


def convolved_face_maps(shape: tuple[int, ...], faces: np.ndarray) -> list[np.ndarray]:
    """Each face resized to the map's size (nearest pixel) and passed through a fixed random 3x3
    convolution into ``shape[1]`` channels (zero-padded, as a network's are), at unit spread: a part's
    input at map sizes the reference network does not make (table format 4 and 5's input at every size).

    Not the resized face alone: its maps are smoother than a network's (neighbours along a row change
    sign about 6 % of the time, a random network's activations 12-38 %, more the deeper and smaller the
    map), and onnxruntime's PReLU branches on each element's sign, so a part ran faster on them (an
    FLGC block at 28 px: 1.41 ms against 1.71 ms on the network's own activations); one random 3x3
    convolution brings the signs near a network's (1.58 ms).  Not noise either: it mixes signs at
    random and the same block ran 3.29 ms (``benchmarks/latency_maps.py``)."""
    _, channels, height, width = shape
    if tuple(faces.shape[1:]) == (channels, height, width):
        return [face[None] for face in faces]
    rows = ((np.arange(height) + 0.5) * faces.shape[2] / height).astype(int)
    columns = ((np.arange(width) + 0.5) * faces.shape[3] / width).astype(int)
    weights = np.random.default_rng(channels).standard_normal((channels, faces.shape[1] * 9)).astype(np.float32)
    maps = []
    for face in faces:
        padded = np.pad(face[:, rows][:, :, columns], ((0, 0), (1, 1), (1, 1)))
        windows = np.stack([padded[:, dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)], axis=1)
        # rows ordered (input channel, dy, dx); einsum, not BLAS, whose idle threads spin and would be timed
        convolved = np.einsum("ck,kp->cp", weights, windows.reshape(-1, height * width))
        maps.append((convolved / max(float(convolved.std()), 1e-6)).reshape(1, channels, height, width)
                    .astype(np.float32))
    return maps


def quantized(model: bytes, batches: Sequence[np.ndarray]) -> bytes:
    """onnxruntime's static int8 quantisation of ``model`` (QDQ), calibrated on ``batches``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory(prefix="nasface-int8-") as folder:
        source, prepared, target = (Path(folder) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(model)
        with _quiet_quantizer():
            # constants folded into initializers first: the quantiser quantises only initializer biases
            quant_pre_process(str(source), str(prepared))
            quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return target.read_bytes()


@contextlib.contextmanager
def _quiet_quantizer():
    """The quantiser logs its advice to the root logger at WARNING, once per layer: noise here."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# -- running ----------------------------------------------------------------------------------------------
def _onnxruntime_runner(model: bytes, threads: int, sample: np.ndarray) -> Callable[[], object]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a spinning thread steals a core
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: sample}
    return lambda: session.run(None, feed)


def _openvino_runner(model: bytes, threads: int, sample: np.ndarray) -> Callable[[], object]:
    import openvino

    core = openvino.Core()
    with tempfile.TemporaryDirectory(prefix="nasface-ov-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(model)
        read = core.read_model(str(path))
    compiled = core.compile_model(read, "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                                                "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda: request.infer({0: sample})


_RUNNERS = {"onnxruntime": _onnxruntime_runner, "openvino": _openvino_runner}


Maps = Callable[[tuple[int, ...], np.ndarray], list[np.ndarray]]  # (shape, faces) -> inputs, as activation_maps


def runner(model: bytes, shape: tuple[int, ...], target: LatencyTarget, faces: np.ndarray,
           maps: Maps = activation_maps) -> Callable[[], object]:
    """One inference of ``model`` (fp32 ONNX) on ``target`` with an input drawn from ``faces`` by ``maps``,
    ready to time; int8 is quantised first, calibrated on such inputs."""
    batches = maps(shape, faces)
    if target.precision == "int8":
        model = quantized(model, batches)
    return _RUNNERS[target.runtime](model, target.threads, batches[0])


def clock(target: LatencyTarget) -> Callable[[], float]:
    """What a run of ``target`` is timed by: the process's CPU time on one thread, wall time on several."""
    return time.process_time if target.threads == 1 else time.perf_counter


def time_in_turn(runners: Sequence[Callable[[], object]], warmup: int = WARMUP_RUNS, runs: int = TIMED_RUNS,
                 now: Callable[[], float] = time.perf_counter) -> list[Timing]:
    """Warm each up, then run them in turn ``runs`` rounds, timed by ``now``: the minimum and median of each."""
    for run in runners:
        for _ in range(warmup):
            run()
    seconds: list[list[float]] = [[] for _ in runners]
    for _ in range(runs):
        for run, taken in zip(runners, seconds):
            start = now()
            run()
            taken.append(now() - start)
    return [Timing(min(taken) * 1e3, statistics.median(taken) * 1e3, runs) for taken in seconds]


def measure(specs: Sequence[ArchSpec], target: LatencyTarget, runs: int = TIMED_RUNS, warmup: int = WARMUP_RUNS,
            source: str = "synthetic", group: int = GROUP) -> list[Measurement]:
    """Each network of ``specs`` exported and timed on ``target``, ``group`` at a time, their runs in turn
    (``runs`` each); a group of fewer is filled with ``companions``, timed beside it and not reported.

    Each runs on a face of ``source`` (a data spec, as ``--data`` takes), and int8 is calibrated on its faces.
    """
    key = target.key()  # first: a runtime that is not installed is one line before any export
    faces = calibration_faces(source)
    figures = []
    for first in range(0, len(specs), group):
        chosen = specs[first:first + group]
        runners = [runner(network_onnx(spec), network_shape(spec), target, faces) for spec in chosen]
        runners += company_runners(target, source, group - 1)[:group - len(chosen)]
        timings = time_in_turn(runners, warmup, runs, clock(target))
        figures += [Measurement(spec.name, timing.ms, timing.median_ms, timing.runs,
                                {**key, "input_size": spec.input_size}) for spec, timing in zip(chosen, timings)]
    return figures


def network_shape(spec: ArchSpec) -> tuple[int, int, int, int]:
    return 1, 3, spec.input_size, spec.input_size


def companions(count: int) -> list[ArchSpec]:
    """``count`` fixed networks that fill a short group of networks being measured: random networks of the
    default space within the LFR light track (seed ``COMPANY_SEED``), the company a table's networks meet."""
    from nasface.arch.budget import LIGHT_TRACK
    from nasface.arch.space import feasible_sample, load_space

    return feasible_sample(load_space("lfr"), LIGHT_TRACK, 0, COMPANY_SEED, keep=count)["specs"] if count else []


@functools.lru_cache(maxsize=4)
def company_runners(target: LatencyTarget, source: str, count: int) -> tuple[Callable[[], object], ...]:
    """``companions(count)`` ready to run on ``target`` (built once a process: a search by measurement
    measures every candidate)."""
    logger.info(f"preparing the {count} fixed networks a lone network is timed beside, on {target}"
                + (" (quantising them takes a minute or so)" if target.precision == "int8" else ""))
    faces = calibration_faces(source)
    return tuple(runner(network_onnx(spec), network_shape(spec), target, faces) for spec in companions(count))


@dataclass(frozen=True)
class PartTiming:
    """A part timed in context: ``ms`` (and ``median_ms``) is lead and part less the lead alone
    (``lead_ms``; 0 for the stem, timed alone), over the part's ``copies``.  It may be below zero where
    the part's output is far smaller than its input (a stride-2 part whose layout change at its output is
    cheaper than the one at its input, which the lead's figure takes out): a network's sum is right, not
    each part alone."""

    ms: float
    median_ms: float
    runs: int
    lead_ms: float
    nodes: int  # the operators one copy of the part runs (the lead's left out)
    copies: int


def measure_parts(parts: Sequence[Part], target: LatencyTarget, runs: int = TIMED_RUNS, warmup: int = WARMUP_RUNS,
                  source: str = "synthetic", maps: Maps = activation_maps,
                  chain: int = CHAIN_COPIES) -> list[PartTiming]:
    """Each part timed in context on ``target`` (its copies behind its lead, less the lead alone, over the
    copies), the parts and their distinct leads in turn, on inputs drawn from faces of ``source`` by
    ``maps`` (``chain``: the copies of a chainable part; 1 times each part once, as table format 4 did)."""
    faces = calibration_faces(source)
    leads = {part_shape(part): lead_onnx(part) for part in parts if has_lead(part)}  # one serves parts of one input
    models = [part_onnx(part, chain) for part in parts]
    runners = [runner(model, part_shape(part), target, faces, maps) for part, model in zip(parts, models)]
    runners += [runner(model, shape, target, faces, maps) for shape, model in leads.items()]
    timings = time_in_turn(runners, warmup, runs, clock(target))
    lead_of = dict(zip(leads, timings[len(parts):]))
    lead_nodes = {shape: node_count(model) for shape, model in leads.items()}
    timed = []
    for part, model, timing in zip(parts, models, timings):
        lead = lead_of[part_shape(part)] if has_lead(part) else Timing(0.0, 0.0, runs)
        nodes = node_count(model) - (lead_nodes[part_shape(part)] if has_lead(part) else 0)
        n = copies(part, chain)
        timed.append(PartTiming((timing.ms - lead.ms) / n, (timing.median_ms - lead.median_ms) / n, runs, lead.ms,
                                nodes // n, n))
    return timed
