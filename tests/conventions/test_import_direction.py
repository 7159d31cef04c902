"""The package's groups import in one direction, along the data's path, and never in a cycle.

Read from the source, so a deferred import inside a function counts as much as one at the top:
a cycle that only closes at run time is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import self_instruct

PACKAGE = Path(self_instruct.__file__).parent
CARD = PACKAGE.parent / "dataset_card"

# Each layer may import the layers after it (and its own), never one before it.
LAYERS = [
    {"cli"},
    {"run", "dataset_builder"},
    {"generation", "export", "dataset_card", "hub", "audit"},
    {"prompting", "backends", "rouge", "runlog"},
    {"config", "layout", "schemas", "errors", "utils", "about"},
]
LAYER_OF = {group: rank for rank, layer in enumerate(LAYERS) for group in layer}
# Stand-ins for models and servers: used by tests and benchmarks, never by the package itself.
TESTING = "testing"
# `self_instruct` itself only names the public API, loaded lazily: nothing of ours imports it.
FACADE = "self_instruct"


def _modules() -> dict[str, Path]:
    found = {}
    for root, prefix in ((PACKAGE, "self_instruct"), (CARD, "self_instruct.dataset_card")):
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module of ours that `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from package import module` imports the module; `from module import name`, the module
            found |= {
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    found &= MODULES.keys()
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items() if name != FACADE}


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else FACADE


def test_every_module_belongs_to_a_declared_group():
    unknown = {m for m in MODULES if _group(m) not in {*LAYER_OF, TESTING, FACADE}}
    assert not unknown, f"modules outside the declared groups: {sorted(unknown)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _group(m) in LAYER_OF))
def test_imports_follow_the_data_path(module):
    rank = LAYER_OF[_group(module)]
    against = {
        target
        for target in GRAPH[module]
        if _group(target) in (TESTING, FACADE) or LAYER_OF[_group(target)] < rank
    }
    assert not against, f"{module} imports upstream of itself: {sorted(against)}"


def test_there_is_no_import_cycle():
    cycles = []
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if state[target] == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif state[target] == 0:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if state[node] == 0:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_public_api_is_the_package_and_costs_nothing_to_import():
    """`import self_instruct` loads only its version; each public name loads on first use."""
    import subprocess
    import sys

    code = (
        "import sys, self_instruct\n"
        "loaded = [m for m in sys.modules if m.startswith('self_instruct.')]\n"
        "assert loaded == ['self_instruct.about'], loaded\n"
        "for name in self_instruct.__all__:\n"
        "    assert getattr(self_instruct, name) is not None, name\n"
        "assert self_instruct.RougeIndex.__module__ == 'self_instruct.rouge.index'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'pipeline_config'"):
        self_instruct.pipeline_config  # noqa: B018


def test_every_test_folder_is_importable_as_the_others_expect():
    """The test folders share helper modules; pytest puts each on the path from pyproject.toml."""
    import tomllib

    root = PACKAGE.parent
    listed = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    folders = {"tests"} | {
        str(path.parent.relative_to(root)) for path in (root / "tests").glob("*/test_*.py")
    }
    assert set(listed["pythonpath"]) == folders
