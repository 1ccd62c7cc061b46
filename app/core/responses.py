"""Responses for the hot read endpoints."""

from fastapi import Response
from pydantic import BaseModel


def json_response(model: BaseModel) -> Response:
    """The model serialized by pydantic-core straight to JSON bytes.

    Returned as is, FastAPI skips its `response_model` pass, which validates the model again and
    encodes it through Python objects (≈ 0.3 ms for an inbox page of 50). The route keeps
    `response_model` for the OpenAPI schema.
    """
    return Response(model.model_dump_json(), media_type="application/json")
