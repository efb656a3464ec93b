"""The package's layers, read from the source: every import points down the declared order; and what the
light commands (``nasface count``) and the spec side of architectures load: no torch.

Each module of ``nasface`` belongs to one role package; a package may import its own modules and
those of the packages below it, never one above (a lazy import inside a function counts too: it is
still a dependency).  ``nasface/__init__.py`` (the few names of the Python API) and ``__main__.py``
are entry points, above every layer.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nasface"

# Bottom to top.
LAYERS = ("core", "arch", "data", "training", "latency", "search", "fidelity", "validity", "ui", "cli")
ENTRY_POINTS = ("nasface", "nasface.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str | None:
    """The layer of a ``nasface.*`` module; None for one outside every role package."""
    role = module.split(".")[1] if module.count(".") else ""
    return role if role in LAYERS else None


def run_on_import(tree: ast.Module) -> Iterator[ast.AST]:
    """The statements of ``tree`` that run when the module is imported: not the bodies of functions, nor what
    ``if TYPE_CHECKING:`` guards (annotations only)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, (ast.stmt, ast.excepthandler)))


def imports(path: Path, on_import_only: bool = False) -> list[tuple[int, str]]:
    """Every module ``path`` imports (line, module), relative imports resolved; ``on_import_only``: only
    those imported when ``path`` is (``run_on_import``), not those imported inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in (run_on_import(tree) if on_import_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "nasface":  # ``from nasface import dlib_models``: a module, or a name of the API
                found += [(node.lineno, f"nasface.{alias.name}") for alias in node.names
                          if (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()]
            else:
                found.append((node.lineno, target))
    return found


def imported(path: Path) -> list[tuple[int, str]]:
    """The ``nasface`` modules ``path`` imports (line, module), relative imports resolved."""
    return [(line, module) for line, module in imports(path) if module == "nasface" or module.startswith("nasface.")]


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_layers_are_read_from_every_module():
    """The walk sees the package (a moved or renamed tree would leave the other tests empty)."""
    names = {module_name(path) for path in modules()}
    assert {"nasface.core.errors", "nasface.arch.spec", "nasface.cli.app", "nasface.training.loop"} <= names
    assert ("nasface.arch.spec", "nasface.core.errors") in {
        (module_name(path), module) for path in modules() for _, module in imported(path)}


def test_every_module_is_in_a_role_package():
    stray = [module_name(path) for path in modules()
             if module_name(path) not in ENTRY_POINTS and layer(module_name(path)) is None]
    assert not stray, f"modules outside the role packages {LAYERS}: {stray}"


def test_imports_point_only_down():
    upward = []
    for path in modules():
        name = module_name(path)
        if name in ENTRY_POINTS or layer(name) is None:
            continue
        for line, module in imported(path):
            target = layer(module)
            if target is None or LAYERS.index(target) > LAYERS.index(layer(name)):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({layer(name)}) imports {module} ({target})")
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def package_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan's algorithm)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


@pytest.mark.parametrize("edges, cycles", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_package_cycles_finds_the_cycles(edges, cycles):
    assert package_cycles(edges) == cycles


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for path in modules():
        name = module_name(path)
        if name in ENTRY_POINTS:
            continue
        source = layer(name) or name
        for _, module in imported(path):
            target = layer(module) or module
            if target != source:
                edges.setdefault(source, set()).add(target)
    assert package_cycles(edges) == []


# -- what a command loads ----------------------------------------------------------------------------------
def loaded_by(command: list[str], cwd: Path) -> tuple[int, set[str]]:
    """Run ``nasface COMMAND`` in a fresh interpreter: its exit status and the top-level packages it imported."""
    code = ("import json, sys\n"
            "from nasface.cli import main\n"
            f"sys.argv = ['nasface', *{command!r}]\n"
            "try:\n"
            "    main()\n"
            "    status = 0\n"
            "except SystemExit as exit:\n"
            "    status = exit.code if isinstance(exit.code, int) else 1\n"
            "print(json.dumps([status, sorted({name.split('.')[0] for name in sys.modules})]), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    status, packages = json.loads(done.stderr.strip().splitlines()[-1])
    return status, set(packages)


SEARCH_STACK = {"optuna", "pandas", "plotly"}


def test_train_loads_no_search_stack(tmp_path):
    """``nasface train`` (its help, and a run that stops at a recipe left to fill in, after loading the
    training) imports neither Optuna, pandas nor plotly: a GPU box that trains needs none of them."""
    (tmp_path / "recipe.yaml").write_text("spec: mobilefacenet\n")
    status, packages = loaded_by(["train", "recipe.yaml"], tmp_path)
    assert status == 2 and "torch" in packages  # the training was loaded, and refused the recipe's placeholder
    assert not packages & SEARCH_STACK, sorted(packages & SEARCH_STACK)
    status, packages = loaded_by(["train", "--help"], tmp_path)
    assert status == 0 and not packages & SEARCH_STACK


def test_every_folder_is_a_regular_package():
    """setuptools packs only folders with an ``__init__.py``: a namespace folder would be left out of the wheel."""
    folders = {path.parent for path in modules()}
    assert not [folder for folder in folders if not (folder / "__init__.py").is_file()]


# -- what stays light --------------------------------------------------------------------------------------
# Reading, checking and counting a spec, and starting any command, need none of these: ``nasface count`` answers
# in a fraction of a second.  Each block family keeps its torch side in its ``module.py`` (nasface.arch.blocks).
HEAVY = {"torch", "optuna", "ray", "pandas", "plotly"}


def light_roots() -> list[str]:
    """The modules that must import nothing heavy: the command line as every command loads it (with the search
    options, which ``nasface.cli.search`` turns into parameters when it is imported), and the spec side of
    architectures (every part of ``nasface.arch.blocks`` but its ``module.py`` files)."""
    blocks = [module_name(path) for path in sorted((PACKAGE / "arch" / "blocks").rglob("*.py"))
              if path.name != "module.py"]
    return ["nasface.cli.app", "nasface.search.config", "nasface.arch.model", "nasface.arch.space",
            "nasface.arch.budget", *blocks]


def heavy_on_import(roots: list[str]) -> list[str]:
    """The chains by which importing a module of ``roots`` imports a heavy package (read from the source: what
    runs on import, of each module and of the packages above it)."""
    paths = {module_name(path): path for path in modules()}
    came_from: dict[str, str | None] = {}
    queue = []
    for root in roots:
        came_from.setdefault(root, None)
        queue.append(root)
    chains = []
    while queue:
        name = queue.pop()
        parts = name.split(".")
        loaded = [(0, ".".join(parts[:end])) for end in range(1, len(parts))]  # its packages run first
        for line, module in loaded + imports(paths[name], on_import_only=True):
            if module.split(".")[0] in HEAVY:
                chain, step = [f"{module} (line {line})"], name
                while step is not None:
                    chain.append(step)
                    step = came_from[step]
                chains.append(" <- ".join(chain))
            elif module in paths and module not in came_from:
                came_from[module] = name
                queue.append(module)
    return chains


def test_heavy_on_import_follows_the_chain_to_the_heavy_import():
    assert heavy_on_import(["nasface.arch.blocks.flgc"]) == []
    chains = heavy_on_import(["nasface.arch.network"])
    assert chains and all(chain.endswith("nasface.arch.network") for chain in chains)
    assert any(chain.startswith("torch ") for chain in chains)


def test_the_light_modules_import_nothing_heavy():
    """Statically: no light module imports torch (or the search stack) on import, nor a module that does; a
    family's torch side lives in its ``module.py``, imported inside ``build``."""
    chains = heavy_on_import(light_roots())
    assert not chains, "heavy imports of light modules (module <- the module that imported it):\n" + "\n".join(chains)


def test_the_spec_side_loads_no_torch_and_builds_with_it():
    """What reading, checking and counting every preset imports, run: no heavy package; and the same names
    still reach the module side (``build_model``, a family's module by its old name), which loads torch."""
    code = ("import json, sys\n"
            "import nasface\n"
            "from nasface.arch import budget, cost, model, space, spec\n"
            "from nasface.arch.blocks import FAMILIES, flgc\n"
            "from nasface.arch.blocks.flgc import grouped_pointwise_cost\n"
            "counts = [model.count(name)['flops'] for name in spec.preset_names()]\n"
            "light = sorted({name.split('.')[0] for name in sys.modules})\n"
            "from nasface.arch.blocks.flgc import deploy\n"
            "deploy(nasface.build_model('mobilefacenet'))\n"
            "print(json.dumps([light, len(counts), 'torch' in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert done.returncode == 0, done.stderr
    light, counted, built_with_torch = json.loads(done.stdout.splitlines()[-1])
    heavy = sorted(set(light) & HEAVY)
    assert counted > 20 and built_with_torch and not heavy, heavy


def test_count_spec_presets_and_help_load_no_torch(tmp_path):
    """``nasface count`` on a preset and on a spec file, ``spec``, ``presets`` and ``--help``, run as a user
    runs them, import neither torch nor the search stack."""
    from nasface.arch.spec import load_spec, save_spec

    save_spec(load_spec("vargfacenet"), tmp_path / "mine.yaml")
    for command in (["count", "mobilefacenet"], ["count", "mine.yaml", "--json"], ["spec", "seesaw-shuffle-facenet"],
                    ["presets"], ["--help"]):
        status, packages = loaded_by(command, tmp_path)
        heavy = sorted(packages & HEAVY)
        assert status == 0 and not heavy, (command, status, heavy)


def test_no_test_module_imports_another():
    """Shared test code lives in tests/factories.py, conftest.py and helper modules (tests/killing.py):
    a test module imported by another runs its module-level code twice and hides what it shares."""
    tests = Path(__file__).parent
    offenders = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.relative_to(tests)} imports {name}" for name in names
                          if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")]
    assert not offenders, offenders
