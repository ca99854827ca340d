"""The layers point one way, and every concept has one home (checked on the source tree).

    sim (domain)  <-  chatlab.db, chatlab.metrics  <-  loadtest, chatlab.correctness
                  <-  chatlab.report, chatlab.gate, chatlab.bugs  <-  chatlab.commands, chatlab.cli

A module may import a lower layer, or its own package; never a higher layer and never a
sibling of its own layer (``chatlab.metrics`` knows nothing of ``chatlab.db``, ``loadtest``
nothing of ``chatlab.correctness``).  Imports are read with ``ast``, including the lazy ones
inside functions, so a violation cannot hide in a function body.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> layer (higher layers may import lower ones)
LAYERS: dict[str, int] = {
    "chatlab": 0,  # chatlab/__init__.py: the version only
    "sim": 0,
    "chatlab.db": 1,
    "chatlab.metrics": 1,
    "loadtest": 2,
    "chatlab.correctness": 2,
    "chatlab.calibration": 2,
    "chatlab.replications": 2,
    "chatlab.report": 3,
    "chatlab.gate": 3,
    "chatlab.bugs": 3,
    "chatlab.staffing": 3,
    "chatlab.commands": 4,
    "chatlab.cli": 4,
}
SOURCES = ("sim", "chatlab", "loadtest")
MAX_LINES = 500


def package_of(module: str) -> str | None:
    """The most specific entry of :data:`LAYERS` containing ``module`` (None: not the lab's)."""
    best = None
    for pkg in LAYERS:
        if module == pkg or module.startswith(pkg + "."):
            if best is None or len(pkg) > len(best):
                best = pkg
    return best


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``source``, relative ones resolved."""
    out: list[tuple[int, str]] = []
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # ``from chatlab import report`` imports the sub-package chatlab.report
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names
                    if package_of(f"{target}.{a.name}") not in (None, package_of(target))]
    return out


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Imports of ``module`` that point up the layers or sideways into a sibling package."""
    mine = package_of(module)
    assert mine is not None, module
    bad = []
    for line, target in imported_modules(source, module, is_package):
        theirs = package_of(target)
        if theirs is None or theirs == mine or theirs == "chatlab" and target == "chatlab":
            continue
        if LAYERS[theirs] >= LAYERS[mine]:
            bad.append(f"{module}:{line} ({mine}, layer {LAYERS[mine]}) imports {target} "
                       f"({theirs}, layer {LAYERS[theirs]})")
    return bad


def lab_modules() -> list[Path]:
    return sorted(p for d in SOURCES for p in (ROOT / d).rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    assert [str(p) for p in lab_modules() if package_of(module_name(p)) is None] == []


def test_layers_point_one_way() -> None:
    bad = []
    for path in lab_modules():
        bad += violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize(("module", "source"), [
    ("sim.model", "from chatlab.report import write_run_report"),  # domain importing a report
    ("chatlab.metrics.fairness", "import chatlab.db.client"),  # metrics importing the database
    ("chatlab.db.history", "from chatlab.metrics import analyse"),  # sideways
    ("loadtest.session", "def f():\n    from chatlab.commands import common"),  # lazily, inside a function
    ("loadtest.users.base", "from chatlab import report"),  # a sub-package named in the import list
    ("chatlab.metrics.schema", "from ..report import tables"),  # relative
    ("loadtest.plan", "from chatlab.correctness import replay"),  # a sibling of the same layer
])
def test_a_wrong_import_fails(module: str, source: str) -> None:
    assert violations(source, module), f"{module}: {source!r} was not caught"


def test_allowed_imports_pass() -> None:
    assert violations("from sim.errors import ChatLabError\nfrom chatlab.db.client import ChatDB", "loadtest.session") == []
    assert violations("from chatlab.metrics.runlog import prepare", "chatlab.metrics.fairness") == []
    assert violations("from . import sections", "chatlab.report.writer") == []


def test_no_module_is_over_500_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in lab_modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# ------------------------------------------------------------------------------ SQL in files

_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|SET|RESET|TRUNCATE|GRANT|REVOKE)\s",
                        re.IGNORECASE)


def test_sql_lives_in_sql_files() -> None:
    """No Python module holds SQL text: statements are named blocks of chatlab/db/queries.sql
    (or numbered migrations); docstrings may mention SQL, code may not."""
    found = []
    for path in lab_modules():
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and _SQL_START.match(node.value) and node.value.split()[0].isupper():
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:50]!r}")
    assert found == [], "\n".join(found)


def test_every_named_query_is_defined_and_used() -> None:
    from chatlab.db.queries import all_queries

    defined = set(all_queries())
    code = "\n".join(p.read_text() for p in lab_modules()) + "\n".join(
        p.read_text() for p in (ROOT / "benchmarks").rglob("*.py"))
    used = set(re.findall(r"""(?:query|run|_scalar)\(\s*["']([a-z_]+)["']""", code))
    assert used - defined == set(), f"queries used but not in queries.sql: {sorted(used - defined)}"
    assert defined - used == set(), f"queries in queries.sql nobody runs: {sorted(defined - used)}"
