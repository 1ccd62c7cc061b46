"""Property-based fuzzing of every operation in our own OpenAPI schema (schemathesis), as an
operator, against the API process: no server error, responses that match their documented schema
and content type. Generated inputs are valid and invalid (NUL bytes, lone surrogates, huge
numbers, wrong types, missing fields…). `FUZZ_EXAMPLES` bounds the examples per operation;
`make fuzz` raises it and draws new random inputs (`FUZZ_RANDOM=1`), while `make test` replays
the same derandomised ones."""

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from app.core.config import Settings
from app.main import create_app
from tests.fuzz.conftest import ApiServer

pytestmark = pytest.mark.multiprocess

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
OPENAPI = create_app(Settings(env="test")).openapi()  # what the API serves at /openapi.json
schema = schemathesis.openapi.from_dict(OPENAPI)


def _documented(method: str, path: str) -> set[str]:
    return set(OPENAPI["paths"][path][method.lower()].get("responses", {}))


def server_error(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A 500 is always a bug. Another 5xx is one unless the operation documents it: `/readyz`
    answers 503 by design, the marketplace account endpoints 502/503 when the marketplace
    cannot check a token."""
    status = response.status_code
    documented = _documented(case.operation.method, case.operation.path)
    assert status < 500 or (status != 500 and str(status) in documented), (
        f"server error {status}: {response.text[:500]}"
    )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    suppress_health_check=list(HealthCheck),
)
def test_every_operation(case: schemathesis.Case, api_server: ApiServer) -> None:
    case.call_and_validate(
        base_url=api_server.base_url,
        headers=api_server.auth,
        checks=[server_error, response_schema_conformance, content_type_conformance],
    )
