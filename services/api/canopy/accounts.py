"""Account-wide actions that reach both storage and the live sessions: ending every login of a
user, and deleting a user.

There is no route that deletes a user; `delete_account` is the one way to do it in the
running worker (an operator's tool, the tests), and it evicts the user's live sessions and
closes their sockets. A user row deleted behind the worker's back (SQL) loses its sockets at
their next authentication and its REST access at once (both check that the user exists).
"""

from __future__ import annotations

import logging

from canopy import users
from canopy.services import Services

log = logging.getLogger("canopy.accounts")

CLOSE_LOGGED_OUT = (1008, "logged out")
CLOSE_DELETED = (1008, "account deleted")


async def end_all_logins(services: Services, user_id: str, new_password_hash: str | None = None) -> None:
    """Refuses the user's access tokens (generation bump), refresh tokens and personal access tokens, then
    closes their sockets, MCP streams and AG-UI runs."""
    await users.end_all_tokens(services.engine, user_id, new_password_hash)
    if services.sessions is not None:
        services.sessions.close_user_sockets(user_id, *CLOSE_LOGGED_OUT)
    if services.agent_streams is not None:  # personal access tokens end with the generation: their streams too
        services.agent_streams.end_user(user_id, "logged out everywhere")


async def delete_account(services: Services, user_id: str) -> bool:
    """Deletes the user and everything they own; their live sessions leave memory first."""
    manager = services.sessions
    if manager is not None:
        await manager.evict_user(user_id, *CLOSE_DELETED)
    if services.agent_streams is not None:
        services.agent_streams.end_user(user_id, "account deleted")
    deleted = await users.delete_user(services.engine, user_id)
    if manager is not None:
        await manager.evict_user(user_id, *CLOSE_DELETED)  # a socket that authenticated in between
    log.info("deleted user %s", user_id)
    return deleted
