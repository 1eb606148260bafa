"""The app's long-lived parts, built in the lifespan and kept on `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from canopy.config import Settings
from canopy.loginthrottle import LoginThrottle
from canopy.metrics import Metrics
from canopy.passwords import HashLimiter
from canopy.quotas import Quotas

if TYPE_CHECKING:
    from canopy.agents.streams import AgentStreams
    from canopy.cluster.notify import ClusterBus
    from canopy.realtime.manager import SessionManager


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    metrics: Metrics
    login_failures: LoginThrottle
    hashing: HashLimiter
    sessions: SessionManager | None = field(default=None)
    quotas: Quotas | None = field(default=None)
    agent_streams: AgentStreams | None = field(default=None)  # open MCP/AG-UI streams, ended with their credential
    bus: ClusterBus | None = field(default=None)  # events to the other replicas (PostgreSQL only; None on SQLite)
