"""Imports run one way (io, vision -> models -> pipeline -> batch, commands -> cli) and make no
circle, counting imports inside functions too (they must not hide a circle)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bleedorigin"

# Layers, lowest first: a module may import its own layer and those below, never above.
LAYERS = [
    {"__init__", "errors", "types", "config", "pipeline_config", "utils"},
    {"io", "vision"},
    {"sim"},
    {"models", "training"},
    {"pipeline", "source_revision", "source_consensus", "render"},
    {"eval", "export", "review"},
    {"bench", "batch", "commands"},
    {"cli", "__main__"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """bleedorigin modules `path` imports, anywhere in the file (not under TYPE_CHECKING)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bleedorigin")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bleedorigin"):
            found.add(node.module)
            # `from bleedorigin.models import registry` imports a module, not a name
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_module_has_a_layer():
    tops = {_top(m) for m in _graph()}
    assert tops <= set(LAYER_OF), f"add to LAYERS: {sorted(tops - set(LAYER_OF))}"


def test_imports_point_down_the_layers():
    upward = [f"{a} -> {b}" for a, deps in _graph().items() for b in deps
              if LAYER_OF[_top(b)] > LAYER_OF[_top(a)]]
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = _graph()
    # a package's __init__ importing its own submodules is how packages register: not a circle
    # unless a submodule needs the package's __init__ back
    state: dict[str, int] = {}
    circles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("layer", ["io", "vision"])
def test_low_layers_import_no_models(layer):
    bad = [a for a, deps in _graph().items() if _top(a) == layer and any(_top(b) == "models" for b in deps)]
    assert not bad
