from typing import Annotated

import httpx
from fastapi import Depends, Request

from app.connectors.base import Environment
from app.core.deps import EgressDep, SettingsDep
from app.core.security import SecretBox
from app.sellers.service import TokenChecker


async def get_secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


async def get_token_checker(
    request: Request, settings: SettingsDep, policy: EgressDep
) -> TokenChecker:
    """Checks tokens with the marketplace's connector under the outbound policy; through
    `app.state.marketplace_transport` when one is set (tests: the in-process sandbox), else over
    the network."""
    transport: httpx.AsyncBaseTransport | None = getattr(
        request.app.state, "marketplace_transport", None
    )
    return TokenChecker(Environment(settings, policy, transport))


SecretBoxDep = Annotated[SecretBox, Depends(get_secret_box)]
TokenCheckerDep = Annotated[TokenChecker, Depends(get_token_checker)]
