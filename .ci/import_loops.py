#!/usr/bin/env python3
"""Fails when the crate's modules import each other in a loop.

Two views of `src/`, both of which must be free of cycles:

- the crate's top-level modules (`crate::body`, `crate::error`, ...), each folder folded
  into one node: what `lib.rs` lists;
- every module file, where a module's use of its own parent or children is not counted
  (a folder's `mod.rs` declares and re-exports its children, and they use its vocabulary).

An edge is any path in code that names a crate module: `use crate::a::b`, `crate::a::b::f()`,
`super::x`. Test modules, model checks and their helpers (`tests.rs`, `loom_models.rs`,
`testing.rs`, `properties/`) are left out: they may use anything.
"""
import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
SKIP_FILES = {"tests.rs", "loom_models.rs", "testing.rs"}
SKIP_DIRS = {"properties"}


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)  # comments and doc comments
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)  # string literals
    return text


def main() -> int:
    files = {}
    for path in sorted(SRC.rglob("*.rs")):
        rel = path.relative_to(SRC)
        if path.name in SKIP_FILES or SKIP_DIRS & set(rel.parts[:-1]):
            continue
        files[module_of(path)] = strip(path.read_text())
    modules = set(files)

    def resolve(base: tuple, segments: list) -> tuple:
        """The deepest known module that `base` + `segments` names."""
        best = tuple(base) if base else None
        path = list(base)
        for seg in segments:
            if seg == "super":
                path = path[:-1]
                continue
            if seg == "self":
                continue
            path.append(seg)
            if tuple(path) in modules:
                best = tuple(path)
            else:
                break
        return best

    edges = {m: set() for m in modules}
    path_re = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
    group_re = re.compile(r"\buse\s+(crate|super|self)((?:::\w+)*)::\{([^;]*)\};", re.S)
    for mod, text in files.items():
        found = []
        for root, rest in path_re.findall(text):
            found.append((root, rest.split("::")[1:]))
        for root, rest, group in group_re.findall(text):
            prefix = rest.split("::")[1:] if rest else []
            for item in re.split(r"[,{}\s]+", group):
                if item and re.match(r"\w+$", item):
                    found.append((root, prefix + [item]))
        for root, segments in found:
            base = () if root == "crate" else (mod[:-1] if root == "super" else mod)
            # `super` in a file module refers to its parent; the loop above handles
            # `super::super` by popping again.
            target = resolve(base, segments)
            if target is None or target == mod:
                continue
            edges[mod].add(target)

    failures = []
    # The top-level view.
    top = {}
    for src, dsts in edges.items():
        for dst in dsts:
            if src[:1] != dst[:1] and src and dst:
                top.setdefault(src[:1], set()).add(dst[:1])
    failures += [("top-level modules", c) for c in cycles(top)]
    # The file view, without parent/child edges.
    files_graph = {}
    for src, dsts in edges.items():
        for dst in dsts:
            related = src[: len(dst)] == dst or dst[: len(src)] == src
            if not related:
                files_graph.setdefault(src, set()).add(dst)
    failures += [("module files", c) for c in cycles(files_graph)]

    for view, cycle in failures:
        names = " -> ".join("crate::" + "::".join(m) for m in cycle + [cycle[0]])
        print(f"import loop among {view}: {names}")
    if failures:
        return 1
    print(f"no import loop among {len(modules)} modules")
    return 0


def cycles(graph: dict) -> list:
    """One cycle from each strongly connected component with more than one node."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(one_cycle(graph, set(comp)))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph: dict, comp: set) -> list:
    start = min(comp)
    # Breadth-first back to `start` within the component.
    prev, frontier, seen = {}, [start], {start}
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return list(reversed(path))
                if w in comp and w not in seen:
                    seen.add(w)
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)


if __name__ == "__main__":
    sys.exit(main())
