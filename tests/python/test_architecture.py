"""The package's layout holds: imports point down only (no cycle, the engine imports no
backend or front-end), no module imports another's private names, and the framework-free
layers import no framework."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastocclusion

PACKAGE = Path(fastocclusion.__file__).resolve().parent
COMPILED = {"fastocclusion._core", "fastocclusion._cuda"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import``/``from ... import`` of the package in ``path``, at
    any depth (lazy imports inside functions included), except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return [
        (m, names) for m, names in found if m == "fastocclusion" or m.startswith("fastocclusion.")
    ]


def target_modules(module: str, names: list[str], known: dict[str, Path]) -> list[str]:
    """The package modules an import statement loads (``from fastocclusion import x`` loads
    fastocclusion.x when x is a module)."""
    targets = [module]
    targets += [f"{module}.{name}" for name in names if f"{module}.{name}" in known]
    return [t for t in targets if t in known]


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for module, names in imports_of(path):
            for target in target_modules(module, names, known):
                # A package's __init__ re-exporting its own modules is not an edge back up,
                # and importing the root package (for its version or lazy names) is allowed.
                if target != name and target != "fastocclusion":
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    graph = import_graph()
    # The graph is read right (lazy imports inside functions count too).
    assert "fastocclusion.engine" in graph["fastocclusion.xplique.occlusion"]
    assert "fastocclusion.backends.torch" in graph["fastocclusion.backends"]
    assert find_cycle(graph) is None


FRONT_ENDS = ("fastocclusion.xplique", "fastocclusion.captum", "fastocclusion.monai")
ABOVE_BACKENDS = (*FRONT_ENDS, "fastocclusion.cli", "fastocclusion.distributed",
                  "fastocclusion.demo", "fastocclusion.plot", "fastocclusion.epoch_maps",
                  "fastocclusion.keras", "fastocclusion.lightning")  # fmt: skip
BACKENDS = ("fastocclusion.backends.tensorflow", "fastocclusion.backends.torch",
            "fastocclusion.backends.numpy")  # fmt: skip


def in_layer(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def test_imports_point_down():
    """engine: no backend, front-end, CLI or datasets; backends: nothing above them, and no
    backend imports another (the TensorFlow backend may use the NumPy backend's calls: a
    NumPy model's batches are the same on both); a front-end imports no other front-end."""
    layers = {
        "fastocclusion.engine": ("fastocclusion.backends", *ABOVE_BACKENDS),
        "fastocclusion.backends.tensorflow": (*ABOVE_BACKENDS, "fastocclusion.backends.torch"),
        "fastocclusion.backends.torch": (*ABOVE_BACKENDS, "fastocclusion.backends.tensorflow",
                                         "fastocclusion.backends.numpy"),
        "fastocclusion.backends.numpy": (*ABOVE_BACKENDS, "fastocclusion.backends.tensorflow",
                                         "fastocclusion.backends.torch"),
        **{front: tuple(f for f in ABOVE_BACKENDS if f != front) for front in FRONT_ENDS},
    }  # fmt: skip
    graph = import_graph()
    for name, targets in graph.items():
        for layer, forbidden in layers.items():
            if in_layer(name, layer):
                bad = sorted(t for t in targets if any(in_layer(t, f) for f in forbidden))
                assert not bad, f"{name} imports {bad}"
    # The check reads the graph right: the Captum front-end does import its backend.
    assert "fastocclusion.backends.torch.forward" in graph["fastocclusion.captum.occlusion"]


def test_only_the_engine_builds_sweeps_and_fillers():
    """Outside the engine no module constructs a Sweep or a filler: front-ends call
    engine.build_sweep."""
    built = {"Sweep", "HostFiller", "DeviceFiller"}
    for name, path in modules().items():
        if in_layer(name, "fastocclusion.engine"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else None
                called = node.func.id if isinstance(node.func, ast.Name) else called
                assert called not in built, f"{name} constructs {called} (line {node.lineno})"


def test_objectives_own_the_targets():
    """Model runner and objective: the targets' rules (checks, defaults, validation) are the
    objective's, in engine.objective or an objective class; no backend class defines them,
    and only the engine's objective module reads tasks' target rules."""
    rules = {"check_targets", "resolve_targets"}
    owners = set()
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                defined = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                if defined & rules:
                    owners.add(f"{name}.{node.name}")
            if isinstance(node, ast.Attribute) and node.attr in (
                "default_targets", "validate_targets", "check_targets_before_call"
            ):  # fmt: skip
                assert name == "fastocclusion.engine.objective", f"{name} reads tasks.{node.attr}"
    assert owners == {
        "fastocclusion.engine.objective.OperatorObjective",
        "fastocclusion.engine.objective.OutputValues",
        "fastocclusion.engine.protocols.Objective",
        "fastocclusion.backends.torch.forward.TargetIndex",
    }, owners


def test_no_private_names_imported_across_modules():
    for name, path in modules().items():
        for module, names in imports_of(path):
            private = [n for n in names if n.startswith("_") and f"{module}.{n}" not in COMPILED]
            assert not private, f"{name} imports private {private} from {module}"


@pytest.mark.parametrize(
    "module",
    [
        "fastocclusion",
        "fastocclusion.engine",
        "fastocclusion.xplique",
        "fastocclusion.backends",
        "fastocclusion.arrays",
        "fastocclusion.tasks",
        "fastocclusion.types",
        "fastocclusion.frameworks",
        "fastocclusion.backends.numpy",
    ],
)
def test_framework_free_layers_import_no_framework(module):
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_every_design_reference_resolves():
    """Code cites the design as "design §n": every such section is in docs/design.md."""
    root = Path(__file__).resolve().parents[2]  # the source tree these tests belong to
    design = root / "docs" / "design.md"
    sections = set(re.findall(r"^## (\d+)\. ", design.read_text(encoding="utf-8"), re.M))
    cited: dict[str, str] = {}
    for folder in ("python", "csrc", "tests", "benchmarks"):
        for path in (root / folder).rglob("*"):
            if path.suffix in (".py", ".pyi", ".hpp", ".cpp", ".cu", ".cuh", ".h"):
                for number in re.findall(r"design\s+§(\d+)", path.read_text(encoding="utf-8")):
                    cited.setdefault(number, str(path.relative_to(root)))
    assert len(cited) >= 5, cited  # the scan reads the code's citations
    missing = {n: where for n, where in cited.items() if n not in sections}
    assert not missing, f"sections cited but not in docs/design.md: {missing}"
