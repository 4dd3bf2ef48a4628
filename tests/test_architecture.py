"""The rules of the house, read from the source with `ast` (docs/architecture.md, "Rooms").

Each rule fails with the offending module and line, so a change that breaks one says
where. What counts as a module's imports: every `import` and `from ... import` in it,
at the top or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge_agent"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted (a module, or a module plus a name)
    line: int
    lazy: bool  # inside a function or method


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, tuple[Path, ast.Module]]:
    return {module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"), str(p)))
            for p in sorted(PACKAGE.rglob("*.py"))}


SOURCES = sources()


def imports_of(name: str) -> list[Import]:
    path, tree = SOURCES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = set()
    for node in tree.body:  # module level, `if TYPE_CHECKING:` blocks included
        top.update(id(n) for n in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        top.update(id(n) for n in cls.body)  # class-level statements run at import too
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, node.lineno, id(node) not in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parents + ([base] if base else []))
            out += [Import(name, f"{base}.{a.name}", node.lineno, id(node) not in top) for a in node.names]
    return out


def resolve(target: str) -> str | None:
    """The project module an import names (the longest known prefix), None for others."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in SOURCES:
            return candidate
    return None


EDGES = {name: [(imp, resolve(imp.target)) for imp in imports_of(name)] for name in SOURCES}


def within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_command(module: str) -> bool:
    """Command-line modules: entry points that compose the rooms, imported by name only."""
    return module.endswith(".cli") or module in ("edge_agent.cli", "edge_agent.lazy_commands")


# --------------------------------------------------------------------------- layering

PURE = ("edge_agent.lane", "edge_agent.local_rules", "edge_agent.plates")
DEVICES = ("edge_agent.devices",)
SIMULATORS = ("edge_agent.simulators",)
DEMO = ("edge_agent.demo", "edge_agent.demo_rau")

FORBIDDEN = [
    # (who, may not import, why)
    (PURE, ("edge_agent.store", "edge_agent.devices", "edge_agent.sync", "edge_agent.core", "edge_agent.console",
            "edge_agent.central", "edge_agent.agent", *SIMULATORS, *DEMO),
     "the lane, the rules and plates are pure: values in, decisions out"),
    (DEVICES, ("edge_agent.store", "edge_agent.local_rules", "edge_agent.lane", "edge_agent.core", "edge_agent.sync",
               "edge_agent.console", "edge_agent.central", "edge_agent.agent", *SIMULATORS, *DEMO),
     "devices turn the world into events and carry commands out; they own no business state"),
    (("edge_agent.store",), ("edge_agent.devices", "edge_agent.core", "edge_agent.sync", "edge_agent.console",
                             "edge_agent.central", "edge_agent.lane", "edge_agent.local_rules", "edge_agent.agent",
                             *SIMULATORS, *DEMO),
     "the store keeps records; it decides nothing and talks to nothing"),
    (("edge_agent.core",), ("edge_agent.devices", "edge_agent.console", "edge_agent.central", "edge_agent.agent",
                            *SIMULATORS, *DEMO),
     "the core sees devices and the console only as the events they post"),
    (("edge_agent.sync",), ("edge_agent.core", "edge_agent.devices", "edge_agent.console", "edge_agent.lane",
                            "edge_agent.agent", *SIMULATORS, *DEMO),
     "sync turns MQTT into events and the outbox into messages; the core applies them"),
    (("edge_agent.evidence",), ("edge_agent.devices", "edge_agent.store", "edge_agent.core", "edge_agent.sync",
                                "edge_agent.console", *SIMULATORS, *DEMO),
     "evidence manifests are files and hashes, whoever takes the pictures"),
    (("edge_agent.console",), ("edge_agent.core", "edge_agent.devices", "edge_agent.sync", *SIMULATORS, *DEMO),
     "the console turns forms into events and renders state; the core applies them"),
    (("edge_agent.metrics",), ("edge_agent.store", "edge_agent.core", "edge_agent.devices", "edge_agent.sync",
                               "edge_agent.console", *SIMULATORS, *DEMO),
     "the figures are values the agent gathers; the page renders and serves them"),
    (("edge_agent.central",), ("edge_agent.store", "edge_agent.core", "edge_agent.devices", "edge_agent.console",
                               *SIMULATORS, *DEMO),
     "the RAU's hub has its own ledger and meets sites only over MQTT"),
    (("edge_agent.web",), ("edge_agent.store", "edge_agent.core", "edge_agent.devices", "edge_agent.sync",
                           "edge_agent.lane", "edge_agent.local_rules", "edge_agent.console", "edge_agent.central",
                           "edge_agent.storage", "edge_agent.agent", *SIMULATORS, *DEMO),
     "the web parts (accounts, sessions, CSRF, audit log, headers, throttle) serve both consoles and know neither"),
    (("edge_agent.storage",), ("edge_agent.core", "edge_agent.devices", "edge_agent.sync", "edge_agent.console",
                               "edge_agent.central", "edge_agent.agent", *SIMULATORS, *DEMO),
     "the storage's lifecycle works on files and records, beside the lanes, never in them"),
]


def layering_violations() -> list[str]:
    found = []
    for who, banned, why in FORBIDDEN:
        for name, edges in EDGES.items():
            if not within(name, *who) or (is_command(name) and who != DEVICES):
                continue
            for imp, target in edges:
                if target and within(target, *banned):
                    found.append(f"{SOURCES[name][0].relative_to(ROOT)}:{imp.line} imports {target} ({why})")
    return found


def test_the_lane_the_rules_and_the_devices_keep_to_their_rooms():
    assert layering_violations() == []


def test_production_modules_never_import_a_simulator():
    production = [n for n in SOURCES if not within(n, *SIMULATORS, *DEMO) and not is_command(n)]
    found = [f"{SOURCES[n][0].relative_to(ROOT)}:{imp.line} imports {t}"
             for n in production for imp, t in EDGES[n] if t and within(t, *SIMULATORS, *DEMO)]
    assert found == []


def test_the_agent_never_imports_the_training_or_the_benchmarks():
    # Training reads the benchmarks' photos and wants time and memory no board has.
    found = [f"{SOURCES[n][0].relative_to(ROOT)}:{imp.line} imports {imp.target}"
             for n in SOURCES for imp in imports_of(n) if imp.target.split(".")[0] in ("training", "benchmarks")]
    assert found == []


def test_the_daemon_loads_no_simulator_and_no_demo_code():
    """Everything `edge-agent run` can ever import, lazily or not, from the agent outward."""
    seen, todo = set(), ["edge_agent.agent", "edge_agent.site"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [t for _, t in EDGES[name] if t]
        # importing a.b.c runs a/__init__ and a/b/__init__ too
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in SOURCES]
    assert sorted(n for n in seen if within(n, *SIMULATORS, *DEMO)) == []
    assert "edge_agent.core" in seen and "edge_agent.devices.gate.controller" in seen  # the walk did walk


# --------------------------------------------------------------------------- cycles

def room(module: str) -> str:
    """The package a module belongs to for the cycle check: edge_agent.X, devices.X,
    and each command module on its own (nothing imports a command module)."""
    if is_command(module):
        return module
    parts = module.split(".")
    depth = 3 if len(parts) >= 3 and parts[1] == "devices" else 2
    return ".".join(parts[:depth])


def cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, edges in EDGES.items():
        for _, target in edges:
            if target and room(target) != room(name) and target != "edge_agent":
                graph[room(name)].add(room(target))
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_package_cycles():
    assert cycles() == []


# --------------------------------------------------------------------------- lazy imports

# A project import inside a function hides a dependency; each one left must say why.
LAZY_ALLOWED = {
    ("edge_agent.agent", "edge_agent.console"): "the console's web stack loads only when the console is enabled",
    ("edge_agent.agent", "edge_agent.sync.client"): "paho-mqtt loads only for a site with a link to the RAU",
    ("edge_agent.console", "edge_agent.console.server"): "the same: uvicorn and Starlette only when served",
    ("edge_agent.console.server", "edge_agent.console.app"): "the same",
    ("edge_agent.devices.anpr.listener", "edge_agent.devices.anpr.recognition"): "onnxruntime, for local reading only",
    ("edge_agent.devices.anpr.pull", "edge_agent.devices.anpr.recognition"): "onnxruntime, for local reading only",
    ("edge_agent.central.ledger", "edge_agent.central.ledger.postgres"): "psycopg (the `central` extra) loads only "
                                                                          "for a PostgreSQL ledger",
}


def test_lazy_project_imports_are_only_where_a_heavy_optional_part_justifies_them():
    found = [f"{SOURCES[n][0].relative_to(ROOT)}:{imp.line} imports {t} inside a function"
             for n, edges in EDGES.items() if not is_command(n)
             for imp, t in edges if imp.lazy and t and (n, t) not in LAZY_ALLOWED]
    assert found == []


# --------------------------------------------------------------------------- SQL

SQL = re.compile(r"\b(SELECT\s[\s\S]*\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
                 r"|CREATE\s+(TABLE|INDEX)|PRAGMA\s+\w+)")
# Databases other than the agent's, each with its one owner.
OTHER_DATABASES = {
    "edge_agent.web.accounts": "a console's own database (console.db, rau_console.db): users and sessions",
    "edge_agent.web.audit": "a console's own database: the hash-chained audit log",
    "edge_agent.web.throttle": "a console's own database: failed-login counts and users' login addresses",
    "edge_agent.central.ledger": "the RAU's ledger",
    "edge_agent.central.ledger.sqlite": "the RAU's ledger in one SQLite file",
    "edge_agent.central.ledger.postgres": "the RAU's ledger on PostgreSQL",
}


def sql_outside_the_store() -> list[str]:
    found = []
    for name, (path, tree) in SOURCES.items():
        if within(name, "edge_agent.store") or name in OTHER_DATABASES:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
            if isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "query") and \
                    isinstance(node.value, ast.Attribute) and node.value.attr in ("db", "conn"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.value.attr}.{node.attr}(...)")
    return found


def test_only_the_store_speaks_sql_to_the_agents_database():
    assert sql_outside_the_store() == []


# --------------------------------------------------------------------------- the checks check

@pytest.mark.parametrize(("source", "rule"), [
    ("from edge_agent.store import Store\n", layering_violations),
    ("def f():\n    from edge_agent.devices.scale import transport\n", layering_violations),
    ("def f():\n    import edge_agent.agent\n",
     test_lazy_project_imports_are_only_where_a_heavy_optional_part_justifies_them),
    ("ROWS = 'SELECT id FROM crossings WHERE lane = ?'\n", sql_outside_the_store),
])
def test_each_rule_catches_what_it_is_about(monkeypatch, source, rule):
    """A rule that could never fail guards nothing: plant a violation in a lane module."""
    name = "edge_agent.lane.session"
    path, tree = SOURCES[name]
    planted = ast.parse(path.read_text(encoding="utf-8") + "\n" + source)
    monkeypatch.setitem(SOURCES, name, (path, planted))
    monkeypatch.setitem(EDGES, name, [(imp, resolve(imp.target)) for imp in imports_of(name)])
    if rule is layering_violations or rule is sql_outside_the_store:
        assert any("lane/session.py" in v for v in rule())
    else:
        with pytest.raises(AssertionError):
            rule()


def test_a_cycle_is_caught(monkeypatch):
    name = "edge_agent.plates.normal_form"
    path, _ = SOURCES[name]
    planted = ast.parse(path.read_text(encoding="utf-8") + "\nfrom edge_agent.lane import Phase\n")
    monkeypatch.setitem(SOURCES, name, (path, planted))
    monkeypatch.setitem(EDGES, name, [(imp, resolve(imp.target)) for imp in imports_of(name)])
    assert ["edge_agent.lane", "edge_agent.plates"] in cycles()
