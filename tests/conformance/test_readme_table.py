"""The README's conformance table lists exactly the modules the suite re-enacts, each by its test."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _marked() -> dict[str, str]:
    """module name -> test function name, from every @conformance marker in tests/conformance."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "tests" / "conformance").glob("test_*.py")):
        module = importlib.import_module(f"tests.conformance.{path.stem}")
        for name, function in vars(module).items():
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "conformance":
                    assert mark.args[0] not in found, f"{mark.args[0]} is re-enacted twice"
                    found[mark.args[0]] = name
    return found


def _readme_rows() -> dict[str, str]:
    """module name -> result, from the README's conformance table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Conformance", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `(oidcc-[a-z0-9-]+)` \| [^|]+ \| ([^|]+) \|",
                                                                 section, re.M)}


def test_the_readme_table_and_the_conformance_tests_name_the_same_modules() -> None:
    assert sorted(_readme_rows()) == sorted(_marked())


def test_each_module_is_re_enacted_by_the_test_named_after_it() -> None:
    for module, function in _marked().items():
        assert function == "test_" + module.replace("-", "_"), module


def test_every_listed_module_passes_or_is_skipped_by_its_own_rule() -> None:
    assert {result.split(" ")[0] for result in _readme_rows().values()} <= {"passes", "skipped"}
