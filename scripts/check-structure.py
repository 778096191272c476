#!/usr/bin/env python3
"""Checks the source tree's shape: no crate depends upward (the layers below), no `src/` file
over 600 lines, and no two `src/` files that import each other, directly or in a ring.

An import is a `use` or an inline path (`crate::a::b`, `super::x`, `self::y`) in one crate's
`src/`; it points at the file that *defines* the imported name (re-exports are followed), so a
`mod.rs` that only re-exports its children is not tied to them both ways. `mod x;` lines are
declarations, not imports, and unit tests (`#[cfg(test)] mod tests`) are left out.

Usage: scripts/check-structure.py [--max-lines N]   (exit 1 and a report on any finding)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600
# A crate may depend (in [dependencies]) only on crates of a lower layer.
LAYERS = {
    "drift-types": 0,
    "drift-client": 1,
    "drift-sim": 1,
    "bridge-store": 1,
    "bridge-queue": 2,
    "bridge-sinks": 2,
    "bridge-export": 2,
    "bridge-core": 3,
    "bridge-web": 4,
    "driftbridge": 5,
}
DEF = r"(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?(?:fn|struct|enum|trait|type|const|static|mod|union)\s+{name}\b"


def strip(text):
    """Code without comments, string literals and the unit-test module."""
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path tuple -> file
        for f in src.rglob("*.rs"):
            rel = f.relative_to(src).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            self.files.setdefault(tuple(parts), f)
        self.code = {m: strip(f.read_text()) for m, f in self.files.items()}

    def module_of(self, path):
        """The longest prefix of `path` that is a module file, and the rest."""
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in self.files:
                return tuple(path[:n]), path[n:]
        return (), path

    def defining(self, module, rest, seen=None):
        """The module whose file defines `rest[0]` as reached from `module`."""
        if not rest:
            return module
        name = rest[0]
        seen = seen or set()
        if (module, name) in seen:
            return module
        seen.add((module, name))
        code = self.code.get(module, "")
        if re.search(DEF.format(name=re.escape(name)), code):
            return module
        # Follow a re-export: `pub use a::b::{.., name, ..}` or `pub use a::name`.
        for target in uses(code, pub_only=True):
            if target and target[-1] == name:
                resolved = self.resolve(module, target[:-1])
                if resolved is not None and resolved != module:
                    return self.defining(resolved, [name], seen)
        return module

    def resolve(self, here, path):
        """A `crate::`/`super::`/`self::` path used in module `here` -> the module named."""
        if not path:
            return None
        head, rest = path[0], list(path[1:])
        if head == "crate":
            base = []
        elif head == "self":
            base = list(here)
        elif head == "super":
            base = list(here[:-1])
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif tuple(list(here) + [head]) in self.files:
            base, rest = list(here), [head] + rest  # `use child::x` inside a mod.rs
        else:
            return None
        module, remaining = self.module_of(base + rest)
        if len(module) < len(base):
            return None
        return module if not remaining else self.defining(module, remaining)

    def edges(self):
        """module -> {imported module: names taken from it}."""
        out = {}
        for module, code in self.code.items():
            targets = {}
            children = [m[-1] for m in self.files if len(m) == len(module) + 1 and m[: len(module)] == module]
            for path in uses(code) + inline_paths(code, children):
                m = self.resolve(module, path)
                if m is not None and m != module:
                    targets.setdefault(m, set()).add(path[-1])
            out[module] = targets
        return out


def expand(prefix, body):
    """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]."""
    body = body.strip()
    if not body.startswith("{"):
        return [prefix + [p for p in body.split("::") if p]]
    inner, depth, items, cur = body[1:-1], 0, [], ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for it in items:
        it = re.sub(r"\s+as\s+\w+", "", it.strip())
        if not it or it == "self":
            if it == "self":
                out.append(prefix)
            continue
        if "{" in it:
            head, _, tail = it.partition("{")
            out += expand(prefix + [p for p in head.split("::") if p], "{" + tail)
        else:
            out.append(prefix + [p for p in it.split("::") if p])
    return out


def uses(code, pub_only=False):
    pat = r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);" if pub_only else r"\buse\s+([^;]+);"
    out = []
    for m in re.finditer(pat, code):
        stmt = re.sub(r"\s+", "", m.group(1))
        head, sep, tail = stmt.partition("::{")
        if sep:
            out += expand([p for p in head.split("::") if p], "{" + tail)
        else:
            out += expand([], stmt)
    return [[p for p in path if p != "*"] for path in out]


def inline_paths(code, children=()):
    """Paths written in code: `crate::..`, `super::..`, `self::..`, and `child::..` for a
    child module of this one."""
    code = re.sub(r"\buse\s+[^;]+;", "", code)
    heads = ["crate", "super", "self"] + [re.escape(c) for c in children]
    pat = r"(?<![\w:])(?:" + "|".join(heads) + r")(?:::(?:super|\w+))+"
    return [m.group(0).split("::") for m in re.finditer(pat, code)]


def cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

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
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def upward_edges():
    """[dependencies] on a workspace crate of the same or a higher layer."""
    out = []
    for toml in sorted(ROOT.glob("crates/*/Cargo.toml")):
        crate = toml.parent.name
        if crate not in LAYERS:
            out.append(f"{crate}: not in the layers of scripts/check-structure.py; add it")
            continue
        section = re.search(r"^\[dependencies\]\n(.*?)(?=^\[|\Z)", toml.read_text(), re.S | re.M)
        for dep in re.findall(r"^([\w-]+)\s*[.=]", section.group(1) if section else "", re.M):
            if dep in LAYERS and LAYERS[dep] >= LAYERS[crate]:
                out.append(f"{crate} depends on {dep}, which is not below it")
    return out


def main():
    limit = MAX_LINES
    if "--max-lines" in sys.argv:
        limit = int(sys.argv[sys.argv.index("--max-lines") + 1])
    problems = upward_edges()
    for src in sorted(ROOT.glob("crates/*/src")):
        crate = Crate(src)
        for f in sorted(crate.files.values()):
            n = len(f.read_text().splitlines())
            if n > limit:
                problems.append(f"{f.relative_to(ROOT)}: {n} lines (at most {limit})")
        graph = crate.edges()
        for comp in cycles(graph):
            names = sorted(str(crate.files[m].relative_to(ROOT)) for m in comp)
            ties = [
                f"    {crate.files[a].relative_to(ROOT)} -> {crate.files[b].relative_to(ROOT)}: "
                + ", ".join(sorted(names))
                for a in comp
                for b, names in graph[a].items()
                if b in comp
            ]
            problems.append("files importing each other: " + ", ".join(names) + "\n" + "\n".join(sorted(ties)))
    crates = len(list(ROOT.glob("crates/*/src")))
    if problems:
        print("\n".join(problems))
        print(f"structure: {len(problems)} problem(s) in {crates} crates")
        return 1
    print(
        f"structure: {crates} crates, none depends upward, no src file over {limit} lines, "
        "no import cycles between files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
