"""The repository's layout rules (issue 20), checked from the source with `ast` (no imports, < 1 s):

- nss_train/ has at most MAX_TOP_MODULES modules at its top level besides its subpackages;
- nothing in tools/, benchmarks/ or tests/ edits sys.path (pyproject.toml installs the packages);
- nothing under addons/ imports nss_train (the addon is all a user copies; the runtime depends on the addon only);
- no import cycle among the project's modules (nss_train, nss_godot, nss_runtime), counting lazy imports;
- tools, benchmarks and the packages import no tool and no test, and no private name of another module;
- no function over MAX_FUNCTION_LINES lines in nss_train/ or tools/.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "addons" / "neural_ss" / "runtime"
MAX_TOP_MODULES = 5
MAX_FUNCTION_LINES = 80
PACKAGES = {"nss_train": ROOT / "nss_train", "nss_godot": ROOT / "nss_godot", "nss_runtime": RUNTIME / "nss_runtime"}


def _py(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs for p in d.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str | None:
    for pkg, base in PACKAGES.items():
        if base in path.parents:
            parts = [pkg, *path.relative_to(base).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import in the file, lazy ones included; relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path) or ""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            out.append((mod, [a.name for a in node.names], node.lineno))
    return out


def test_nss_train_top_level_is_small():
    mods = sorted(p.name for p in (ROOT / "nss_train").glob("*.py"))
    assert len(mods) <= MAX_TOP_MODULES, f"nss_train/ top-level modules {mods}: expected <= {MAX_TOP_MODULES}"


@pytest.mark.parametrize("folder", ["tools", "benchmarks", "tests"])
def test_no_sys_path_edits(folder):
    bad = []
    for p in _py(ROOT / folder):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                bad.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert not bad, f"sys.path used in {bad}; pyproject.toml installs the packages"


def test_addon_does_not_import_nss_train():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}" for p in _py(ROOT / "addons")
           for mod, _, line in _imports(p) if mod.split(".")[0] in ("nss_train", "nss_godot")]
    assert not bad, bad


def _graph() -> dict[str, set[str]]:
    names = {_module_name(p): p for base in PACKAGES.values() for p in _py(base)}
    graph = {}
    for name, path in names.items():
        deps = set()
        for mod, items, _ in _imports(path):
            for cand in [f"{mod}.{i}" for i in items] + [mod]:
                if cand in names and cand != name:
                    deps.add(cand)
                    break
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if d.startswith(n + ".") or n.startswith(d + "."):
                continue  # a package and its own modules
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycles():
    c = _cycle(_graph())
    assert c is None, "import cycle: " + " -> ".join(c)


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("folder", ["tools", "benchmarks", "nss_train", "nss_godot"])
def test_code_imports_no_tool_no_test_no_private_name(folder):
    tools = {p.stem for p in (ROOT / "tools").glob("*.py")}
    tests = {p.stem for p in (ROOT / "tests").glob("*.py")}
    bad = []
    for p in _py(ROOT / folder):
        for mod, items, line in _imports(p):
            top = mod.split(".")[0]
            where = f"{p.relative_to(ROOT)}:{line}"
            if top in tools or top in tests or top in ("tools", "tests", "conftest"):
                bad.append(f"{where} imports {mod}")
            bad += [f"{where} imports private {mod}.{i}" for i in items if i.startswith("_") and i != "__future__"
                    and not mod.startswith("__future__")]
    assert not bad, bad


def _long_functions(paths: list[Path]) -> list[str]:
    out = []
    for p in paths:
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_long_functions():
    bad = _long_functions(_py(ROOT / "nss_train", ROOT / "tools"))
    assert not bad, f"functions over {MAX_FUNCTION_LINES} lines: {bad}"


def test_long_function_finder_counts_lines(tmp_path):
    f = tmp_path / "long.py"
    f.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES + "\n\ndef g():\n    return 1\n")
    assert [x.split()[-3] for x in _long_functions_at(f)] == ["f"]


def _long_functions_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return _long_functions([path])
    finally:
        ROOT = saved
