"""Which package may import which (issue 19): the layering of riaktq_cli.

Data flows one way. A package may import its own modules and those of the
packages listed before it in LAYERS, never one after it; `scheduler` and
`worker` stand side by side and import neither each other. Within a package,
modules import each other without a cycle. Imports inside functions count
too: a lazy import keeps `riaktq open` fast, it does not make an upward
dependency any less of one. docs/architecture.md draws the same map.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "riaktq_cli"

LAYERS = [
    "core",       # the task, its transitions, the protocol's records, errors, clock, back-off
    "riak",       # the Riak client: knows nothing of tasks (it uses core's clock and back-off)
    "config",     # settings declared once, the config file, schedules' tables
    "store",      # the store contract and its two implementations
    "runtime",    # logging, signals, outages, the process's own counters
    "scheduler",  # the lease holder's iteration and its parts
    "worker",     # instances, the runner, handler processes
    "api",        # the Python API
    "views",      # what an operator watches
    "cli",        # the riaktq command
]
SIDE_BY_SIDE = [{"scheduler", "worker"}]


def module_name(path, root=PACKAGE):
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(name, source, is_package, known):
    """The riaktq_cli modules `source` (module `name`) imports, with line numbers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[:len(here) - (node.level - 1)]
                base = ".".join(here + ([base] if base else []))
            if base.split(".")[0] == "riaktq_cli":
                found += [(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base, node.lineno)
                          for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "riaktq_cli"]
    return found


def package_of(module):
    """The layer a module belongs to; None for the top (riaktq_cli itself,
    __main__), which may import anything and is imported lazily by name."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1].startswith("__"):
        return None
    return parts[1]


def violations(sources):
    """Upward or sideways imports between packages, as readable lines.
    `sources`: {module name: (source, is_package)}."""
    known = set(sources)
    found = []
    for name, (source, is_package) in sources.items():
        mine = package_of(name)
        if mine is None:
            continue
        assert mine in LAYERS, f"{name}: package {mine} is not in LAYERS (add it where it belongs)"
        for target, line in imports(name, source, is_package, known):
            theirs = package_of(target)
            if theirs is None:
                if target == "riaktq_cli" and mine != "cli":
                    found.append(f"{name}:{line} imports the top package {target}")
                continue
            if theirs == mine:
                continue
            if theirs not in LAYERS or LAYERS.index(theirs) > LAYERS.index(mine) \
                    or {mine, theirs} in SIDE_BY_SIDE:
                found.append(f"{name}:{line} ({mine}) imports {target} ({theirs})")
    return found


def cycles(sources):
    """Modules of one package that import each other, directly or round about."""
    known = set(sources)
    edges = {name: {t for t, _ in imports(name, src, pkg, known)
                    if t in known and t != name and package_of(t) == package_of(name)}
             for name, (src, pkg) in sources.items()}
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                found.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def tree_sources(root=PACKAGE):
    return {module_name(p, root): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in sorted(root.rglob("*.py"))}


def test_every_package_is_in_a_layer_and_has_a_docstring():
    for path in sorted(PACKAGE.glob("*/__init__.py")):
        assert path.parent.name in LAYERS, f"{path.parent.name}/ is in no layer"
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"{path.parent.name}/__init__.py: say in a paragraph what the package is for"


def test_no_package_imports_one_above_it_or_beside_it():
    found = violations(tree_sources())
    assert not found, "imports against the layering (tests/test_layering.py):\n" + "\n".join(found)


def test_no_modules_import_each_other_in_a_cycle():
    found = cycles(tree_sources())
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_checks_see_an_upward_import_and_a_cycle():
    """Not passing for want of looking: an upward import (even a lazy one,
    even relative), a sideways one and a cycle are each found."""
    sources = {
        "riaktq_cli.core.task": ("def f():\n    from riaktq_cli.store import base\n", False),
        "riaktq_cli.store": ("", True),
        "riaktq_cli.store.base": ("from ..core import task\n", False),
        "riaktq_cli.worker.instance": ("import riaktq_cli.scheduler.lease\n", False),
        "riaktq_cli.scheduler.lease": ("from riaktq_cli.scheduler import prefetch\n", False),
        "riaktq_cli.scheduler.prefetch": ("from riaktq_cli.scheduler.lease import x\n", False),
        "riaktq_cli.scheduler": ("", True),
    }
    found = violations(sources)
    assert any("riaktq_cli.core.task:2" in line and "riaktq_cli.store" in line for line in found), found
    assert any(line.startswith("riaktq_cli.worker.instance:1") for line in found), found
    assert not any(line.startswith("riaktq_cli.store.base") for line in found), found   # downward: fine
    assert cycles(sources) == ["riaktq_cli.scheduler.lease -> riaktq_cli.scheduler.prefetch -> riaktq_cli.scheduler.lease"]
