"""Account-wide actions that reach both storage and the live sessions: ending every login of a
user, revoking one personal access token, and deleting a user.

There is no route that deletes a user; `delete_account` is the one way to do it in the
running worker (an operator's tool, the tests), and it evicts the user's live sessions and
closes their sockets. A user row deleted behind the worker's back (SQL) loses its sockets at
their next authentication and its REST access at once (both check that the user exists).

With replicas (PostgreSQL), the user's sockets and agent streams may be open on any replica:
each action is stored first, applied on this replica, then published on the cluster bus
(`logged_out`, `account_deleted`, `token_revoked`; ids only), and every other replica applies
the same local step (`follow_cluster`). A replica that misses the event still refuses the
ended credential at its next authentication: the database is the truth (docs/scaling.md). And
when its listener comes back after a loss (the only time it can miss one), it checks what it
holds open against the database (`recheck_open_access`).
"""

from __future__ import annotations

import logging
from typing import Any

from canopy import tokens, users
from canopy.cluster.notify import ClusterBus
from canopy.realtime.session import Peer
from canopy.services import Services

log = logging.getLogger("canopy.accounts")

CLOSE_LOGGED_OUT = (1008, "logged out")
CLOSE_DELETED = (1008, "account deleted")
REASON_LOGGED_OUT = "logged out everywhere"
REASON_DELETED = "account deleted"
REASON_REVOKED = "token revoked"


async def end_all_logins(services: Services, user_id: str, new_password_hash: str | None = None) -> None:
    """Refuses the user's access tokens (generation bump), refresh tokens and personal access tokens, then
    closes their sockets, MCP streams and AG-UI runs, here and on every other replica."""
    await users.end_all_tokens(services.engine, user_id, new_password_hash)
    _logins_ended_here(services, user_id)
    await _tell_replicas(services, "logged_out", user=user_id)


async def revoke_token(services: Services, user_id: str, token_id: str) -> bool:
    """Deletes one of the user's personal access tokens and ends its open MCP streams and AG-UI runs
    on every replica; False if the user has no such token."""
    if not await tokens.delete_token(services.engine, user_id, token_id):
        return False
    _token_revoked_here(services, token_id)
    await _tell_replicas(services, "token_revoked", user=user_id, token_id=token_id)
    return True


async def delete_account(services: Services, user_id: str) -> bool:
    """Deletes the user and everything they own; their live sessions leave memory first."""
    await _account_deleted_here(services, user_id)
    deleted = await users.delete_user(services.engine, user_id)
    manager = services.sessions
    if manager is not None:
        await manager.evict_user(user_id, *CLOSE_DELETED)  # a socket that authenticated in between
    await _tell_replicas(services, "account_deleted", user=user_id)
    log.info("deleted user %s", user_id)
    return deleted


# --- this replica's part, for its own requests and for the other replicas' events ----------------


def _logins_ended_here(services: Services, user_id: str) -> None:
    if services.sessions is not None:
        services.sessions.close_user_sockets(user_id, *CLOSE_LOGGED_OUT)
    if services.agent_streams is not None:  # personal access tokens end with the generation: their streams too
        services.agent_streams.end_user(user_id, REASON_LOGGED_OUT)


def _token_revoked_here(services: Services, token_id: str) -> None:
    if services.agent_streams is not None:  # its open MCP streams and AG-UI runs end now, not at their next request
        services.agent_streams.end_token(token_id, REASON_REVOKED)


async def _account_deleted_here(services: Services, user_id: str) -> None:
    if services.sessions is not None:
        await services.sessions.evict_user(user_id, *CLOSE_DELETED)
    if services.agent_streams is not None:
        services.agent_streams.end_user(user_id, REASON_DELETED)


async def _tell_replicas(services: Services, event_type: str, **ids: str) -> None:
    """Publishes after the change is stored. A failure here (PostgreSQL unreachable right after the
    commit) is logged, not raised: the change stands, and the other replicas refuse the ended
    credential at its next authentication even without the event."""
    if services.bus is None:
        return
    try:
        await services.bus.publish(event_type, **ids)
    except Exception as exc:
        log.warning("could not tell the other replicas (%s): %r", event_type, exc)


def follow_cluster(services: Services, bus: ClusterBus) -> None:
    """Applies the other replicas' account events here, with the same close codes and reasons."""

    def user_of(event: dict[str, Any]) -> str | None:
        user = event.get("user")
        return user if isinstance(user, str) else None

    async def logged_out(event: dict[str, Any]) -> None:
        if (user_id := user_of(event)) is not None:
            _logins_ended_here(services, user_id)

    async def account_deleted(event: dict[str, Any]) -> None:
        if (user_id := user_of(event)) is not None:
            await _account_deleted_here(services, user_id)

    async def token_revoked(event: dict[str, Any]) -> None:
        if isinstance(token_id := event.get("token_id"), str):
            _token_revoked_here(services, token_id)

    async def resumed() -> None:
        await recheck_open_access(services)

    bus.on("logged_out", logged_out)
    bus.on("account_deleted", account_deleted)
    bus.on("token_revoked", token_revoked)
    bus.on_resumed = resumed


async def recheck_open_access(services: Services) -> None:
    """Ends what this replica holds open whose credential the database no longer honours: sockets of a
    deleted user or from before their latest logout-all, agent streams of a deleted user or a revoked
    (or generation-ended) personal access token. For the events this replica may have missed."""
    streams = services.agent_streams
    sockets = _authenticated_sockets(services)
    users_open = {user_id for _, user_id, _ in sockets} | (streams.user_ids() if streams else set())
    current = await users.generations(services.engine, users_open)
    for peer, user_id, generation in sockets:
        if user_id not in current:
            peer.close(*CLOSE_DELETED)
        elif current[user_id] != generation:
            peer.close(*CLOSE_LOGGED_OUT)
    if streams is None:
        return
    for user_id in users_open - current.keys():
        streams.end_user(user_id, REASON_DELETED)
    held = streams.token_ids()
    for token_id in held - await tokens.current_ids(services.engine, held):
        streams.end_token(token_id, REASON_REVOKED)


def _authenticated_sockets(services: Services) -> list[tuple[Peer, str, int | None]]:
    """(socket, its user, the token generation its token carried) for every authenticated socket here."""
    if services.sessions is None:
        return []
    found = [(p, getattr(p, "user_id", None), getattr(p, "generation", None)) for p in services.sessions.peers]
    return [(peer, user_id, generation) for peer, user_id, generation in found if isinstance(user_id, str)]
