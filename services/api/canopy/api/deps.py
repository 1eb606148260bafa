"""Dependencies shared by the REST routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer

from canopy.security import InvalidTokenError, decode_access_token
from canopy.services import Services
from canopy.users import User, get_user

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/login", auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


_UNAUTHORIZED = HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})


async def get_current_user(services: ServicesDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    if not token:
        raise _UNAUTHORIZED
    try:
        claims = decode_access_token(token, services.settings.secret_key.get_secret_value())
    except InvalidTokenError:
        raise _UNAUTHORIZED from None
    user = await get_user(services.engine, claims.user_id)
    if user is None or user.token_generation != claims.generation:
        raise _UNAUTHORIZED  # deleted, or logged out everywhere / password changed since the token was issued
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
