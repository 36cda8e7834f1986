"""The import layers ARCHITECTURE.md declares hold: no import upward, no cycle, no module left out.

Reads every module under src/infercomp with `ast` (imports inside functions and under
TYPE_CHECKING count too: they are knowledge of the other module all the same)."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "infercomp"


def declared_layers(text: str) -> list[tuple[str, list[str]]]:
    """The ```layers block of ARCHITECTURE.md: [(layer, [module patterns])], top layer first."""
    match = re.search(r"```layers\n(.*?)```", text, re.S)
    assert match, "ARCHITECTURE.md has no ```layers block"
    layers: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        if not line.strip():
            continue
        if line[0].isspace():  # a continuation of the layer above
            layers[-1][1].extend(line.split())
            continue
        name, _, patterns = line.partition(":")
        layers.append((name.strip(), patterns.split()))
    return layers


def module_files() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported infercomp module, line) for every import in the file; `from a import b` names
    module a.b when that is a module, else a."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "infercomp" or name.startswith("infercomp."):
                target = resolve(name)
                if target is not None:
                    found.append((target, node.lineno))
    return found


def layer_of(module: str, layers) -> int | None:
    hits = [i for i, (_, patterns) in enumerate(layers) if any(fnmatchcase(module, p) for p in patterns)]
    return hits[0] if hits else None


def check(layers, modules: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Every breach of the layer map, one readable line each."""
    problems = []
    where = {m: layer_of(m, layers) for m in modules}
    problems += [f"{m} is in no layer of ARCHITECTURE.md" for m, i in sorted(where.items()) if i is None]
    for _, patterns in layers:
        problems += [
            f"layer pattern {p!r} names no module" for p in patterns if not any(fnmatchcase(m, p) for m in modules)
        ]
    graph: dict[str, set[str]] = {}
    for module, path in sorted(modules.items()):
        graph[module] = set()
        for target, line in imports_of(path, modules):
            if target == module or target.startswith(module + "."):  # a package importing its own parts
                if target != module:
                    graph[module].add(target)
                continue
            graph[module].add(target)
            mine, theirs = where[module], where[target]
            if mine is not None and theirs is not None and theirs < mine:
                problems.append(
                    f"{path.relative_to(root)}:{line}: {module} ({layers[mine][0]}) imports {target} "
                    f"({layers[theirs][0]}), a layer above it"
                )
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan), as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for group in groups:
        start = min(group)
        path, node = [start], start
        while True:  # walk inside the group until a node repeats
            node = min(w for w in graph[node] if w in group)
            if node in path:
                out.append(path[path.index(node) :] + [node])
                break
            path.append(node)
    return out


def test_imports_follow_the_declared_layers():
    layers = declared_layers((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    problems = check(layers, module_files())
    assert not problems, "\n".join(problems)


def test_an_upward_import_and_a_cycle_are_named(tmp_path):
    """The check can fail: a module of a low layer importing a higher one, and two modules that
    import each other, are both reported with the offending import."""
    pkg = tmp_path / "infercomp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("from infercomp.high import thing\n")
    (pkg / "high.py").write_text("import infercomp.low\nthing = 1\n")
    modules = {
        "infercomp": pkg / "__init__.py",
        "infercomp.low": pkg / "low.py",
        "infercomp.high": pkg / "high.py",
    }
    layers = declared_layers("```layers\ntop: infercomp infercomp.high\nbottom: infercomp.low\n```\n")
    problems = check(layers, modules, root=tmp_path)
    upward = "infercomp/low.py:1: infercomp.low (bottom) imports infercomp.high (top)"
    assert any(upward in p for p in problems), problems
    assert any(p.startswith("import cycle: infercomp.high -> infercomp.low -> infercomp.high") for p in problems)


LIMIT = 400


def test_no_module_is_longer_than_the_limit():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    match = re.search(r"```over-400\n(.*?)```", text, re.S)
    excepted = {line.split(":")[0].strip() for line in (match.group(1) if match else "").splitlines() if line.strip()}
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in module_files().items()}
    long = {m: n for m, n in lengths.items() if n > LIMIT and m not in excepted}
    assert not long, f"modules over {LIMIT} lines: {long}"
    stale = {m for m in excepted if lengths.get(m, 0) <= LIMIT}
    assert not stale, f"ARCHITECTURE.md excepts modules that are no longer over {LIMIT} lines: {stale}"
