"""Marketplaces behind one protocol: the registry, and nothing Wildberries outside its package."""

import ast
import inspect
from pathlib import Path

import pytest

from app.connectors import base, registry
from app.connectors.wildberries import CONNECTOR
from app.connectors.wildberries.client import WildberriesClient
from app.connectors.wildberries.limits import DEFAULT_LIMITS

APP = Path(__file__).resolve().parents[2] / "app"


def test_the_registry_finds_connectors_by_marketplace_name() -> None:
    assert registry.names() == ("wildberries",)
    assert registry.get("wildberries") is CONNECTOR
    assert CONNECTOR.name == "wildberries"
    assert registry.supports("wildberries")
    assert not registry.supports("ozon")
    with pytest.raises(registry.UnknownMarketplace):
        registry.get("ozon")
    assert registry.default_limits() == DEFAULT_LIMITS
    assert registry.DEFAULT_MARKETPLACE in registry.names()


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    [(base.Marketplace, WildberriesClient), (base.Connector, type(CONNECTOR))],
)
def test_the_wildberries_connector_has_every_method_of_the_protocol(
    protocol: type, implementation: type
) -> None:
    """mypy checks the signatures (the registry's dict is typed); this catches a missing one in
    a run of the tests too."""
    wanted = {
        name
        for name, member in vars(protocol).items()
        if callable(member) and (not name.startswith("_") or name in ("__aenter__", "__aexit__"))
    }
    for name in wanted:
        ours = getattr(implementation, name, None)
        assert callable(ours), f"{implementation.__name__} lacks {name}"
        theirs = inspect.signature(getattr(protocol, name))
        assert list(inspect.signature(ours).parameters) == list(theirs.parameters), name


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_registry_imports_a_marketplace_package() -> None:
    """Sync, dispatch and sellers get their connector by the account's marketplace."""
    offenders = []
    for path in APP.rglob("*.py"):
        relative = path.relative_to(APP).as_posix()
        if relative.startswith(("connectors/", "sandbox/")):
            continue
        if any(name.startswith("app.connectors.wildberries") for name in _imports(path)):
            offenders.append(relative)
    assert offenders == []


def test_connectors_import_no_domain() -> None:
    domains = ("auth", "interactions", "sellers", "links", "sync", "drafts", "dispatch", "cards")
    for path in (APP / "connectors").rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith(tuple(f"app.{d}" for d in domains)), (path, name)
            assert not name.startswith(("app.worker", "app.sandbox")), (path, name)


def test_core_knows_no_marketplace() -> None:
    for path in (APP / "core").rglob("*.py"):
        assert not any(name.startswith("app.connectors") for name in _imports(path)), path
        text = path.read_text(encoding="utf-8")
        assert "FEEDBACKS" not in text, path
        assert "MARKETPLACE_LIMITS" not in text, path
