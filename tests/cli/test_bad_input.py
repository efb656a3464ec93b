"""Bad input, one table: each case is a real command line that must exit non-zero with exactly one
clear line on stderr naming the problem, no traceback, and nothing written.

Cases marked ``subprocess`` run ``python -m nasface`` as a user would; the others run the same
``nasface.cli.main`` in this process (no interpreter start-up: same code path, seconds faster).
A property test then feeds random YAML to the spec, search-space and study-file loaders.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasface
from nasface.arch.checkpoint import save_weights
from nasface.cli import main
from nasface.core.errors import NasfaceError
from nasface.search.config import config_from_options
from nasface.arch.space import DEFAULT_SPACE, RandomChooser, load_space
from nasface.arch.spec import PRESETS_DIR, spec_from_dict
from tests.factories import faces, png
from tests.factories import face, ir_header, write_recordio
from tests.factories import ONE_STAGE_NET

SEARCH = ["search", "--teacher", "none", "--executor", "inline", "--proxy-steps", "1", "--resolution", "32",
          "--device", "cpu", "--no-baselines"]


# Study files and recipes with a value of the wrong type (each a {in}/study-<name>.yaml, recipe-<name>.yaml).
STUDY_FILES = {"steps-word": "proxy_steps: ten\n", "baselines-quoted": 'baselines: "false"\n',
               "budget-list": "budget_flops: [1, 2]\n", "distill-unknown": "distill: telepathy\n",
               "trials-float": "trials: 2.5\n", "objectives-number": "objectives: 3\n",
               "not-a-mapping": "- study: x\n", "rungs-word": "rungs: [forty, 120]\n",
               "objectives-null": "objectives: null\n"}
RECIPES = {"lr-word": {"lr": "fast"}, "generations-text": {"generations": "2"}, "val-bins-text": {"val_bins": 5},
           "margin-unknown": {"margin": "triplet"}}


class _RunsCommand:
    """A pickled object whose unpickling would run a shell command creating ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_inputs(folder: Path) -> None:
    """Every bad file the table refers to, as {in}/<name>."""
    folder.mkdir()
    spec = yaml.safe_load((PRESETS_DIR / "mobilefacenet.yaml").read_text())
    (folder / "extra-field.yaml").write_text(yaml.safe_dump({**spec, "stem": {**spec["stem"], "colour": "red"}}))
    (folder / "broken.yaml").write_text("name: x\nstages: [\n")
    narrow = {**ONE_STAGE_NET, "stages": [{"family": "varg", "repeats": 1, "width": 84, "stride": 2}]}
    (folder / "indivisible.yaml").write_text(yaml.safe_dump(narrow))
    space = yaml.safe_load(DEFAULT_SPACE.read_text())
    unknown_family = copy.deepcopy(space)
    unknown_family["stages"]["family"].append("mamba")
    (folder / "space-family.yaml").write_text(yaml.safe_dump(unknown_family))
    empty_choice = copy.deepcopy(space)
    empty_choice["stages"]["varg"]["group_size"] = []
    (folder / "space-empty.yaml").write_text(yaml.safe_dump(empty_choice))

    records = [ir_header(float(k % 2), png(face(k))) for k in range(4)]
    (folder / "truncated").mkdir()
    write_recordio(folder / "truncated" / "train", records)
    rec = folder / "truncated" / "train.rec"
    rec.write_bytes(rec.read_bytes()[:-50])
    (folder / "two-people").mkdir()
    write_recordio(folder / "two-people" / "train", records)  # 2 identities, 2 faces each
    (folder / "corrupt-jpeg").mkdir()  # 4 identities x 2 faces; the sixth face's bytes are not an image
    people = [ir_header(float(k % 4), png(face(k)) if k != 5 else b"\xff\xd8 not really a jpeg") for k in range(8)]
    write_recordio(folder / "corrupt-jpeg" / "train", people)
    (folder / "past-end").mkdir()
    write_recordio(folder / "past-end" / "train", records)
    with open(folder / "past-end" / "train.idx", "a") as index:
        index.write("4\t999999\n")

    (folder / "evil.bin").write_bytes(pickle.dumps(([png(f) for f in faces(2)], [_RunsCommand(folder / "pwned")])))
    (folder / "pairs.bin").write_bytes(pickle.dumps(([png(f) for f in faces(2)], [True])))
    (folder / "small.bin").write_bytes(pickle.dumps(([png(f) for f in faces(2, (96, 80))], [False])))
    for identity in ("a", "b"):
        (folder / "small-faces" / identity).mkdir(parents=True)
        (folder / "small-faces" / identity / "1.png").write_bytes(png(face(ord(identity), (100, 90))))

    small = spec_from_dict(ONE_STAGE_NET)
    save_weights(folder / "small.safetensors", nasface.build_model(small), small)

    for name, text in STUDY_FILES.items():
        (folder / f"study-{name}.yaml").write_text(text)
    (folder / "small.yaml").write_text(yaml.safe_dump(ONE_STAGE_NET))
    for name, fields in RECIPES.items():
        (folder / f"recipe-{name}.yaml").write_text(yaml.safe_dump({"spec": "small.yaml", "data": "orl",
                                                                    "teacher": "none", **fields}))
    write_surface_inputs(folder)


# (id, arguments ({in} is the inputs folder), words the one line must contain, run as a subprocess)
CASES = [
    ("budget-abc", [*SEARCH, "--budget-flops", "abc"], "--budget-flops 'abc': not a quantity", True),
    ("budget-negative", [*SEARCH, "--budget-flops", "-1G"], "--budget-flops '-1G'", False),
    ("budget-unit", [*SEARCH, "--budget-flops", "1X"], "--budget-flops '1X': not a quantity", False),
    ("budget-zero", [*SEARCH, "--budget-flops", "0"], "a budget must be positive", False),
    ("budget-empty", [*SEARCH, "--budget-flops", ""], "--budget-flops '': not a quantity", False),
    ("budget-mem", [*SEARCH, "--budget-mem", "lots"], "--budget-mem 'lots': not a quantity", False),
    ("space-budget", ["space", "--budget-act-mem", "1Q"], "--budget-act-mem '1Q'", False),
    ("timeout", [*SEARCH, "--timeout", "soon"], "--timeout 'soon'", False),
    ("sampler", [*SEARCH, "--sampler", "annealing"], "--sampler 'annealing'", False),
    ("unknown-preset", ["count", "nope"], "unknown preset 'nope'", False),
    ("unknown-preset-written", ["spec", "nope", "-o", "out.yaml"], "unknown preset 'nope'", False),
    ("unknown-teacher-preset", [*SEARCH, "--teacher", "auto", "--teacher-spec", "nope"], "unknown preset 'nope'",
     False),
    ("teacher-spec-without-teacher", [*SEARCH, "--teacher", "none", "--teacher-spec", "mobilefacenet"],
     "--teacher none builds no teacher", False),
    ("missing-spec-file", ["count", "missing/spec.yaml"], "no such spec file", False),
    ("unknown-spec-field", ["count", "{in}/extra-field.yaml"], "spec.stem.colour: unknown field", False),
    ("invalid-spec", ["count", "{in}/indivisible.yaml"], "84 channels are not divisible by 8", False),
    ("malformed-yaml", ["count", "{in}/broken.yaml"], "broken.yaml: malformed YAML at line 3", True),
    ("malformed-study-definition", ["search", "--config", "{in}/broken.yaml"], "malformed YAML", False),
    ("space-unknown-family", [*SEARCH, "--space", "{in}/space-family.yaml"], "unknown block family 'mamba'",
     False),
    ("space-empty-choice", ["space", "{in}/space-empty.yaml"],
     "space.stages.varg.group_size: expected a non-empty list of choices", False),
    ("space-missing", [*SEARCH, "--space", "no-such-space.yaml"], "no such search space file", False),
    ("unsatisfiable", [*SEARCH, "--budget-flops", "1K"], "no architecture of the space lfr fits these budgets",
     True),
    ("data-missing", [*SEARCH, "--data", "no/such/folder"], "data source 'no/such/folder' not found", False),
    ("data-missing-describe", ["data", "no/such/folder"], "data source 'no/such/folder' not found", False),
    ("rec-truncated", [*SEARCH, "--data", "{in}/truncated"], "train.rec: truncated", True),
    ("rec-corrupt-jpeg", [*SEARCH, "--data", "{in}/corrupt-jpeg", "--train-identities", "2", "--val-identities",
                          "2", "--images-per-identity", "2", "--pairs", "2"],
     "train.rec record 5: cannot decode image", False),
    ("idx-past-end", [*SEARCH, "--data", "{in}/past-end"], "record 4 starts at byte 999999, past the end", False),
    ("bin-pickle-code", [*SEARCH, "--val-bin", "{in}/evil.bin"], "refusing to unpickle", True),
    ("bin-pickle-code-describe", ["data", "{in}/evil.bin"], "refusing to unpickle", False),
    ("bin-as-training-data", [*SEARCH, "--data", "{in}/pairs.bin"], "holds pairs, not identities", False),
    ("bin-wrong-size", [*SEARCH, "--val-bin", "{in}/small.bin"], "small.bin image 0: image is 80x96", False),
    ("folder-wrong-size", [*SEARCH, "--data", "{in}/small-faces"], "1.png: image is 90x100", False),
    ("teacher-other-architecture", [*SEARCH, "--teacher", "{in}/small.safetensors", "--teacher-spec",
                                    "mobilefacenet"], "checkpoint from another architecture", True),
    ("onnx-other-architecture", ["onnx", "{in}/small.safetensors", "--spec", "mobilefacenet", "-o", "m.onnx"],
     "checkpoint from another architecture", False),
    ("study-steps-word", ["search", "--config", "{in}/study-steps-word.yaml"],
     "study-steps-word.yaml: proxy_steps: expected an integer, got 'ten'", True),
    ("study-baselines-quoted", ["search", "--config", "{in}/study-baselines-quoted.yaml"],
     "baselines: expected true or false, got 'false'", False),
    ("study-budget-list", ["search", "--config", "{in}/study-budget-list.yaml"],
     "budget_flops: expected a string or a number, got [1, 2]", False),
    ("study-distill-unknown", ["search", "--config", "{in}/study-distill-unknown.yaml"],
     "distill: 'telepathy' is not one of", False),
    ("study-trials-float", ["search", "--config", "{in}/study-trials-float.yaml"],
     "trials: expected an integer, got 2.5", False),
    ("study-objectives-null", ["search", "--config", "{in}/study-objectives-null.yaml"],
     "study-objectives-null.yaml: objectives: give one or more of accuracy", False),
    ("study-objectives-number", ["search", "--config", "{in}/study-objectives-number.yaml"],
     "objectives: expected a list of names, got 3", False),
    ("study-not-a-mapping", ["search", "--config", "{in}/study-not-a-mapping.yaml"],
     "expected a mapping of options", False),
    ("recipe-lr-word", ["train", "{in}/recipe-lr-word.yaml"], "recipe.lr: expected a number, got 'fast'", False),
    ("recipe-generations-text", ["train", "{in}/recipe-generations-text.yaml"],
     "recipe.generations: expected an integer, got '2'", False),
    ("recipe-val-bins-text", ["train", "{in}/recipe-val-bins-text.yaml"], "recipe.val_bins: expected a list",
     False),
    ("recipe-margin-unknown", ["train", "{in}/recipe-margin-unknown.yaml"],
     "recipe.margin: unknown margin loss 'triplet'", False),
    ("fidelity-no-reference", ["fidelity", "--factors", "0.5,1"], "must be larger than the proxy", False),
    ("fidelity-unknown-signal", ["fidelity", "--signals", "accuracy,vibes"], "unknown signal 'vibes'", False),
    ("fidelity-too-few", ["fidelity", "--archs", "3", "--no-presets"], "a rank interval needs at least 8", False),
    ("fidelity-factors", ["fidelity", "--factors", "a,b"], "--factors 'a,b'", False),
    ("fidelity-timeout", ["fidelity", "--timeout", "5x"], "--timeout '5x': write a duration such as 30m", False),
    ("fidelity-data-missing", ["fidelity", "--data", "no/such/folder"], "data source 'no/such/folder' not found",
     False),
    # --analyse where no study ran (or --out mistyped): an analysis of nothing would be written
    ("fidelity-analyse-no-log", ["fidelity", "--analyse", "--data", "orl", "--teacher", "none"],
     "--analyse: studies/fidelity-orl/log.jsonl does not exist, so there is nothing to analyse", False),
    ("validate-analyse-no-log", ["validate", "--analyse", "--data", "orl", "--teacher", "none"],
     "--analyse: studies/validate-orl/log.jsonl does not exist, so there is nothing to analyse", False),
    # the options' syntax, as click parses it: one line too, naming the command's help
    ("option-wrong-type", [*SEARCH, "--proxy-steps", "ten"], "Invalid value for '--proxy-steps'", False),
    ("option-unknown", ["search", "--budget-flopz", "1G"], "No such option: --budget-flopz", False),
    ("option-missing", ["export", "lfr-light"], "Missing option '--trial'", False),
    ("option-value-missing-last", [*SEARCH, "--data"], "Option '--data' requires an argument. (see nasface search",
     False),
    # an option's value left out before another option: click would take the option as the value
    ("option-value-swallows-option", [*SEARCH, "--budget-flops", "--data", "orl"],
     "--budget-flops has no value: the next word is the option --data (see nasface search --help)", False),
    ("option-value-swallows-flag", [*SEARCH, "--studies-dir", "--no-baselines"],
     "--studies-dir has no value: the next word is the option --no-baselines", False),
    ("latency-value-swallows-option", ["latency", "mobilefacenet", "--runtime", "--threads", "2"],
     "--runtime has no value: the next word is the option --threads (see nasface latency --help)", False),
    ("command-unknown", ["serach"], "No such command 'serach'", True),
    ("search-unknown-score", [*SEARCH, "--score", "vibes"], "--score 'vibes': choose a signal", False),
    ("search-score-yardstick", [*SEARCH, "--score", "yardstick_cka"], "measured only by nasface fidelity --yardstick",
     False),
    ("search-score-no-teacher", [*SEARCH, "--score", "teacher_cka"], "--score teacher_cka measures agreement with the "
     "teacher: give one", False),
    ("fidelity-yardstick-own-teacher", ["fidelity", "--teacher", "auto", "--yardstick", "auto"],
     "--yardstick auto: name a teacher other than the study's own", False),
    ("rungs-falling", [*SEARCH, "--rungs", "120,40"], "--rungs 120,40: give two or more step counts", False),
    ("rungs-word", [*SEARCH, "--rungs", "40,many"], "--rungs[1]: expected an integer", False),
    ("eta-one", [*SEARCH, "--rungs", "40,120", "--eta", "1"], "--eta 1: the reduction factor must be at least 2",
     False),
    ("study-rungs-word", ["search", "--config", "{in}/study-rungs-word.yaml"], "rungs[0]: expected an integer",
     False),
    ("storage-not-a-url", [*SEARCH, "--storage", "study.db"], "not a database URL", False),
    # found before the study exists, so that the corrected command is not refused as "other settings"
    # (study-workers and study-cpus below are found there too)
    ("identities-beyond-the-data", [*SEARCH, "--data", "{in}/two-people", "--train-identities", "12",
                                    "--val-identities", "8"],
     "has 2 identities, but 12 training + 8 held-out were asked for; lower --train-identities", False),
    ("storage-unreachable", [*SEARCH, "--storage", "postgresql+psycopg://nobody@127.0.0.1:9/none"],
     "cannot connect", False),
]


# -- issue 28: the command line's surface and its input ---------------------------------------------
# Binary files where text is expected, absurd sizes, knobs a kind does not read, output paths that
# do not say a format or whose folder is missing, and study-file values named by the file's key.
def _small_net(**changes) -> bytes:
    return yaml.safe_dump({**ONE_STAGE_NET, **changes}).encode()


def _default_space_with(section: str, kind: str, knob: str, choices: list) -> bytes:
    space = yaml.safe_load(DEFAULT_SPACE.read_text())
    space[section][kind][knob] = choices
    return yaml.safe_dump(space).encode()


SURFACE_FILES = {
    "binary.yaml": bytes(range(256)) * 4,
    "deep.yaml": _small_net(stages=[{**ONE_STAGE_NET["stages"][0], "repeats": 1_000_000_000}]),
    "dw-group-size.yaml": _small_net(head={"kind": "dw", "group_size": 16}),
    "gdc-group-size.yaml": _small_net(embedding={**ONE_STAGE_NET["embedding"], "group_size": 16}),
    "expansion-inf.yaml": _small_net(stages=[{**ONE_STAGE_NET["stages"][0], "expansion": float("inf")}]),
    "space-dw-knob.yaml": _default_space_with("head", "dw", "group_size", [16]),
    "space-gdc-knob.yaml": _default_space_with("embedding", "gdc", "group_size", [8, 16]),
    "garbage.bin": pickle.dumps(([b"not an image", b"not an image"], [True])),
    "study-workers.yaml": b"workers: -3\n", "study-cpus.yaml": b"cpus_per_trial: 0\n",
    "study-sampler.yaml": b"sampler: annealing\n", "study-timeout.yaml": b"timeout: soon\n",
}


def write_surface_inputs(folder: Path) -> None:
    for name, content in SURFACE_FILES.items():
        (folder / name).write_bytes(content)


CASES += [
    ("binary-spec-count", ["count", "{in}/binary.yaml"], "binary.yaml: not a text file (binary data)", True),
    ("binary-spec-spec", ["spec", "{in}/binary.yaml", "-o", "out.yaml"], "binary.yaml: not a text file", False),
    ("binary-spec-onnx", ["onnx", "{in}/binary.yaml", "-o", "m.onnx"], "binary.yaml: not a text file", False),
    ("binary-study-file", ["search", "--config", "{in}/binary.yaml"], "binary.yaml: not a text file", False),
    ("repeats-absurd-count", ["count", "{in}/deep.yaml"],
     "stages[0].repeats: 1,000,000,000 blocks in one stage is beyond the 1,000", True),
    ("repeats-absurd-spec", ["spec", "{in}/deep.yaml"], "1,000,000,000 blocks in one stage", False),
    ("head-knob-not-read", ["count", "{in}/dw-group-size.yaml"],
     "spec.head.group_size: does not apply to a dw head (only to a varg head)", False),
    ("embedding-knob-not-read", ["spec", "{in}/gdc-group-size.yaml"],
     "spec.embedding.group_size: does not apply to a gdc embedding", False),
    ("space-head-knob-not-read", ["space", "{in}/space-dw-knob.yaml"],
     "space.head.dw.group_size: unknown field (valid fields: stride)", False),
    ("space-embedding-knob-not-read", [*SEARCH, "--space", "{in}/space-gdc-knob.yaml"],
     "space.embedding.gdc.group_size: unknown field (valid fields: width)", False),
    ("expansion-inf", ["count", "{in}/expansion-inf.yaml"],
     "stages[0].expansion: must be a positive number below 1e6 (such as 2 or 4), got inf", False),
    ("bin-image-undecodable", [*SEARCH, "--val-bin", "{in}/garbage.bin"],
     "garbage.bin image 0: cannot decode image (cannot identify image file); the file", False),
    ("folder-of-photos", [*SEARCH, "--data", "{in}/small-faces"], "small-faces to detect and align the faces",
     False),
    ("study-workers", ["search", "--config", "{in}/study-workers.yaml"],
     "study-workers.yaml: workers must be at least 1, got -3", False),
    ("study-cpus", ["search", "--config", "{in}/study-cpus.yaml"],
     "study-cpus.yaml: cpus_per_trial must be a positive number of CPUs", False),
    ("study-sampler", ["search", "--config", "{in}/study-sampler.yaml"], "study-sampler.yaml: sampler 'annealing'",
     False),
    ("study-timeout", ["search", "--config", "{in}/study-timeout.yaml"], "study-timeout.yaml: timeout 'soon'",
     False),
    ("flag-cpus", [*SEARCH, "--executor", "ray", "--cpus-per-trial", "0"], "--cpus-per-trial must be a positive",
     False),
    ("spec-output-no-folder", ["spec", "mobilefacenet", "-o", "no/such/folder/x.yaml"],
     "the folder no/such/folder does not exist", False),
    ("spec-output-extension", ["spec", "mobilefacenet", "-o", "out.txt"], "out.txt: a spec file ends in .yaml, .yml",
     False),
    ("budget-exponent-huge", [*SEARCH, "--budget-flops", "1e999999999"], "too large to be a budget", False),
    ("progress-and-output", [*SEARCH, "--output", "jsonl", "--progress", "quiet"],
     "--output is the former name of --progress", False),
]

def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args, words, as_subprocess", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line_and_writes_nothing(args, words, as_subprocess, tmp_path, monkeypatch, capsys):
    inputs, work = tmp_path / "in", tmp_path / "work"
    write_inputs(inputs)
    work.mkdir()
    before = files_under(inputs)
    args = [arg.replace("{in}", str(inputs)) for arg in args]
    if as_subprocess:
        done = subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True, cwd=work,
                              timeout=600)
        code, err = done.returncode, done.stderr
    else:
        monkeypatch.chdir(work)
        monkeypatch.setattr(sys, "argv", ["nasface", *args])
        with pytest.raises(SystemExit) as exited:  # anything else escaping main() is a traceback
            main()
        code, err = exited.value.code, capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words in lines[0]
    assert files_under(work) == {} and not list(work.iterdir())  # no study, no cache, no partial output
    assert files_under(inputs) == before  # nothing created beside the inputs (the .bin's code never ran)


# -- random YAML for the loaders ------------------------------------------------------------------
KEYS = ["name", "input_size", "stem", "head", "stages", "embedding", "width", "stride", "act", "kind", "family",
        "repeats", "slots", "size", "group_size", "split", "variant", "expansion", "groups", "se_ratio", "dw",
        "varg", "seesaw", "flgc", "bottleneck", "gdc", "fc", "gap", "x", "proxy_steps", "baselines", "objectives",
        "timeout", "trials", "budget_flops", "workers"]
SCALARS = (st.none() | st.booleans() | st.integers(-3, 600) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8) | st.sampled_from(KEYS))
TREES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(st.sampled_from(KEYS) | SCALARS.filter(lambda v: v is not None),
                                       children, max_size=5),
                     max_leaves=24)


def _paths(tree, path=()):
    yield path
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*path, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _paths(value, (*path, index))


@st.composite
def mutated(draw, original: dict):
    """A valid spec / space with a few random edits: a value replaced, a key dropped, one added."""
    tree = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(tree))))
        if not path:
            return draw(TREES)
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "drop", "add", "wrap"]))
        if action == "replace":
            parent[path[-1]] = draw(TREES)
        elif action == "drop":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(TREES)
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return tree


SPEC = yaml.safe_load((PRESETS_DIR / "seesaw-shuffle-facenet.yaml").read_text())
SPACE = yaml.safe_load(DEFAULT_SPACE.read_text())
STUDY = {"study": "fuzz", "budget_flops": "1G", "budget_mem": 20_000_000, "data": "orl", "proxy_steps": 120,
         "resolution": 64, "objectives": ["accuracy", "flops"], "trials": 6, "timeout": "1h30m", "baselines": True,
         "cpus_per_trial": 2, "distill": "angular", "train_identities": 30}
DOCUMENTS = (st.text(max_size=120) | TREES.map(yaml.safe_dump) | mutated(SPEC).map(yaml.safe_dump)
             | mutated(SPACE).map(yaml.safe_dump) | mutated(STUDY).map(yaml.safe_dump))


def load_study_file(path: Path):
    return config_from_options({}, path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(text=DOCUMENTS)
def test_random_yaml_loads_or_raises_one_clear_nasface_error(text, tmp_path):
    path = tmp_path / "random.yaml"
    path.write_text(text)
    for load in (nasface.load_spec, load_space, load_study_file):
        try:
            loaded = load(path)
        except NasfaceError as err:
            assert str(err).strip() and "\n" not in str(err)
            continue
        if load is load_space:  # a space that loads must also sample, or refuse a point clearly
            for seed in range(3):
                try:
                    loaded.sample(RandomChooser(seed))
                except NasfaceError as err:
                    assert "\n" not in str(err)
