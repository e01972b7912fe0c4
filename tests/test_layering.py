"""The library (`ultramedical/`) knows nothing of Ray, of the actors, of the job scripts or of the bench.

Ray code lives in actors/, entry glue (the CLI included) in jobs/, and the library takes callables where
it needs fan-out. This walks every module of the library, imports nested in functions included, and fails
on an import of those packages, on `importlib.import_module("...")` / `__import__("...")` naming them, and
on any change to `sys.path` (the way around an import rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "ultramedical"
FORBIDDEN = ("ray", "actors", "jobs", "bench")
DYNAMIC_IMPORTS = {"importlib.import_module", "import_module", "__import__"}


def _forbidden(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN


def _dotted(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _touches_sys_path(node: ast.AST) -> bool:
    """`sys.path` read as a whole (sys.path.insert(...), sys.path = ..., sys.path += ..., del ...):
    a library has no reason to look at it."""
    return isinstance(node, ast.Attribute) and _dotted(node) == "sys.path"


def _dynamic_target(call: ast.Call) -> tuple[str, str] | None:
    """(module, as written) for `importlib.import_module(...)` / `__import__(...)` with a string (or an
    f-string's leading text) as its module, else None."""
    if _dotted(call.func) not in DYNAMIC_IMPORTS or not call.args:
        return None
    target = call.args[0]
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        return target.value, repr(target.value)
    if isinstance(target, ast.JoinedStr) and target.values and isinstance(target.values[0], ast.Constant):
        return str(target.values[0].value), ast.unparse(target)
    return None


def layering_violations(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import in `source`, each as "file:line: what", in line order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [(line, f"import {alias.name}") for alias in node.names if _forbidden(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # Relative imports (`from . import x`) stay inside the library.
            names = ", ".join(alias.name for alias in node.names)
            if _forbidden(node.module) or (node.module == "sys" and "path" in names.split(", ")):
                found.append((line, f"from {node.module} import {names}"))
        elif isinstance(node, ast.Call) and (target := _dynamic_target(node)) and _forbidden(target[0]):
            found.append((line, f"{_dotted(node.func)}({target[1]})"))
        elif _touches_sys_path(node):
            found.append((line, "sys.path"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(found)]


def test_the_library_imports_no_ray_actors_jobs_or_bench() -> None:
    modules = sorted(LIBRARY.rglob("*.py"))
    assert len(modules) > 20, f"found only {len(modules)} modules under {LIBRARY}"
    violations = []
    for path in modules:
        name = str(path.relative_to(LIBRARY.parent))
        violations += layering_violations(path.read_text(encoding="utf-8"), name)
    assert not violations, "the library must not reach into Ray, actors/, jobs/ or bench/:\n" + "\n".join(
        violations
    )


def test_the_checker_reports_what_it_forbids() -> None:
    source = """
import json
import ray.train
from ultramedical.config import Config
import importlib
import sys


def fan_out(name):
    from sys import path
    from actors.annotator import AnnotatorActor
    module = importlib.import_module("jobs.iterative_dpo")
    __import__("bench.suite")
    importlib.import_module(f"jobs.cli.{name}")
    importlib.import_module("ultramedical.eval")
    sys.path.insert(0, "/somewhere")
    return json, Config, AnnotatorActor, module, path
"""
    assert layering_violations(source, "synthetic.py") == [
        "synthetic.py:3: import ray.train",
        "synthetic.py:10: from sys import path",
        "synthetic.py:11: from actors.annotator import AnnotatorActor",
        "synthetic.py:12: importlib.import_module('jobs.iterative_dpo')",
        "synthetic.py:13: __import__('bench.suite')",
        "synthetic.py:14: importlib.import_module(f'jobs.cli.{name}')",
        "synthetic.py:16: sys.path",
    ]


def test_names_that_only_start_like_a_forbidden_package_pass() -> None:
    source = "import raylib\nfrom jobsearch import x\nimport benchmarks\nfrom ultramedical import actors\n"
    assert layering_violations(source) == []
