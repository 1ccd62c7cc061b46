"""The layers hold: the import-linter contracts in pyproject.toml (no cycle between sibling
packages or modules at any depth; core <- connectors, worker <- domains <- read models <- entry
points, every package placed; the sandbox imported by nobody)."""

import pytest
from importlinter.cli import lint_imports


def test_the_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert report.count(" KEPT") == 3, report
