"""The layers hold: the import-linter contracts in pyproject.toml (no cycle between sibling
packages or modules at any depth; core <- connectors, worker <- domains <- read models <- entry
points, every package placed; the sandbox imported by nobody), and Wildberries stays in its
connector."""

import re
from pathlib import Path

import pytest
from importlinter.cli import lint_imports


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert report.count(" KEPT") == 3, report


# Wildberries specifics belong to its connector (and to the sandbox, which plays Wildberries):
# elsewhere in app/ a marketplace is reached through `app.connectors.registry`.
_WILDBERRIES = re.compile(r"wildberries|\bwb\b|wb_|вайлдберриз|\bвб\b", re.IGNORECASE)
_EXEMPT = ("app/connectors/wildberries/", "app/sandbox/")
# The registry registers the connector: its import and its entry.
_REGISTRATION = {
    ("app/connectors/registry.py", "from app.connectors import wildberries"),
    ("app/connectors/registry.py", "wildberries.CONNECTOR,"),
}


def test_only_the_wildberries_connector_knows_wildberries() -> None:
    root = Path(__file__).resolve().parent.parent
    hits = []
    for path in sorted((root / "app").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name.startswith(_EXEMPT):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _WILDBERRIES.search(line) and (name, line.strip()) not in _REGISTRATION:
                hits.append(f"{name}:{number}: {line.strip()}")
    assert not hits, "Wildberries specifics outside app/connectors/wildberries:\n" + "\n".join(hits)
