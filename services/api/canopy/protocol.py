"""The WebSocket protocol: one pydantic discriminated union per direction.

`client_frames` parses every frame a client sends (`validate_json`), `server_frames`
describes every frame the server sends (used for the JSON Schema, the docs and the
tests; the hot path builds server frames as plain dicts and serialises them with orjson).
Unknown fields are ignored everywhere, as the contract says.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as ValidationError  # re-exported for callers

# Bumped on a change a client must know about (a field removed or changing meaning); added fields
# and frame types do not bump it, as clients ignore what they do not know.
PROTOCOL_VERSION = 1
MAX_PROMPT_CHARS = 4000
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


Scalar = StrictStr | StrictBool | StrictInt | StrictFloat


class Node(_Model):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    value: Annotated[str, Field(min_length=1, max_length=500)]
    children: list[Node] = Field(default_factory=list)
    props: dict[str, Scalar] | None = None


class AddDelta(_Model):
    action: Literal["add"]
    path: str = Field(description="parent id path followed by /children, e.g. /root/n-1/children")
    node: Node
    index: int | None = None


class UpdateFields(_Model):
    value: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    props: dict[str, Scalar | None] | None = Field(None, description="merged into the node's props; null deletes a key")


class UpdateDelta(_Model):
    action: Literal["update"]
    path: str
    fields: UpdateFields


class RemoveDelta(_Model):
    action: Literal["remove"]
    path: str


class MoveDelta(_Model):
    action: Literal["move"]
    path: str
    to: str = Field(description="new parent id path followed by /children")
    index: int | None = None


Delta = Annotated[AddDelta | UpdateDelta | RemoveDelta | MoveDelta, Field(discriminator="action")]


# --- client -> server -------------------------------------------------------------


class Empty(_Model):
    pass


class InitSessionData(_Model):
    token: Annotated[str, Field(max_length=4096)] | None = None
    session_id: Annotated[str, Field(max_length=64)] | None = None
    last_seq: Annotated[int, Field(ge=0)] | None = None


class UserPromptData(_Model):
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]


class TreeOpData(_Model):
    delta: Delta
    base_rev: Annotated[int, Field(ge=0)]


class PresenceUpdateData(_Model):
    selected: Annotated[str, Field(pattern=ID_PATTERN)] | None = Field(
        None, description="the node this tab has selected; null clears it; absent leaves it as it was"
    )
    typing: StrictBool | None = Field(None, description="whether the user is typing a prompt; absent leaves it")


MAX_PROPOSAL_DELTAS = 1000


class ProposalDecisionData(_Model):
    proposal_id: Annotated[str, Field(min_length=1, max_length=64)]
    accept: Literal["all"] | Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=MAX_PROPOSAL_DELTAS)] = (
        Field(description='"all", or the indices of the deltas to accept; every other delta is rejected')
    )


class _ClientFrame(_Model):
    session_id: str | None = None
    timestamp: str | None = None
    id: Annotated[str, Field(max_length=128)] | None = None
    seq: int | None = None


class InitSession(_ClientFrame):
    type: Literal["init_session"]
    data: InitSessionData


class UserPrompt(_ClientFrame):
    type: Literal["user_prompt"]
    data: UserPromptData


class TreeOp(_ClientFrame):
    type: Literal["tree_op"]
    data: TreeOpData


class Cancel(_ClientFrame):
    type: Literal["cancel"]
    data: Empty


class Undo(_ClientFrame):
    type: Literal["undo"]
    data: Empty


class Redo(_ClientFrame):
    type: Literal["redo"]
    data: Empty


class Resync(_ClientFrame):
    type: Literal["resync"]
    data: Empty


class Ping(_ClientFrame):
    type: Literal["ping"]
    data: Empty


class CloseSession(_ClientFrame):
    type: Literal["close_session"]
    data: Empty


class PresenceUpdate(_ClientFrame):
    type: Literal["presence_update"]
    data: PresenceUpdateData


class ProposalDecision(_ClientFrame):
    type: Literal["proposal_decision"]
    data: ProposalDecisionData


ClientFrame = Annotated[
    InitSession
    | UserPrompt
    | TreeOp
    | Cancel
    | Undo
    | Redo
    | Resync
    | Ping
    | CloseSession
    | PresenceUpdate
    | ProposalDecision,
    Field(discriminator="type"),
]
client_frames: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
CLIENT_TYPES = frozenset(
    (
        "init_session",
        "user_prompt",
        "tree_op",
        "cancel",
        "undo",
        "redo",
        "resync",
        "ping",
        "close_session",
        "presence_update",
        "proposal_decision",
    )
)


# --- server -> client -------------------------------------------------------------


# Why an assistant answer was cut short (the provider's finish_reason).
Truncated = Literal["length", "content_filter"]


class ErrorInfo(_Model):
    code: int
    message: str


class _ServerFrame(_Model):
    session_id: str | None = None
    timestamp: str | None = None
    id: str | None = None
    seq: int | None = Field(None, description="per-session sequence number of broadcast frames")


Role = Literal["owner", "editor", "viewer"]
ViaName = Literal["user", "assistant", "agent", "import"]


class ActorData(_Model):
    """Who made a change: the user it is attributed to, and how it came."""

    username: str
    via: ViaName
    name: str | None = Field(
        None, description="what acted for the user: an agent's token name (via agent), an import's format (via import)"
    )


class ChatMessageData(_Model):
    role: Literal["user", "assistant"]
    content: str
    author: ActorData | None = Field(
        None,
        description="who wrote it: a prompt's user (via user, or via agent with the token's name); an answer, "
        "the user the assistant answered (via assistant). Absent from messages stored before authors were",
    )
    created_at: str | None = None
    cancelled: bool | None = None
    error: ErrorInfo | None = None
    truncated: Truncated | None = Field(None, description="the answer was cut short, and why")
    reasoning: list[str] | None = Field(
        None, description="assistant messages: the turn's reasoning steps, as its reasoning frames carried them"
    )


class TreeLimitsData(_Model):
    """The tree limits this server enforces (canopy.tree.TreeLimits); a client validates edits against them."""

    max_nodes: int = Field(description="nodes in a tree, the root included")
    max_depth: int = Field(description="levels in a tree; the root is depth 1")
    max_value_chars: int = Field(description="characters in a node's value (at least 1)")
    max_props: int = Field(description="props on one node")
    max_prop_key_chars: int = Field(description="characters in a prop key")
    max_prop_value_chars: int = Field(description="characters in a string prop value")
    max_id_chars: int = Field(description="characters in a node id")
    max_bytes: int = Field(description="bytes of the whole tree serialised as JSON (TREE_MAX_BYTES)")


class AssistantInfo(_Model):
    name: str = Field(description='the active provider: "offline" or "openai"')
    examples: list[str] = Field(description="commands the assistant understands, for a cheat sheet; empty for a model")


class ProposalData(_Model):
    id: str
    base_rev: int = Field(description="the tree revision the proposal was made against")
    author: ActorData = Field(
        description="who proposed it: the user whose prompt produced it (via assistant), or whose token an "
        "outside agent used (via agent, with the token's name), or who imported a file (via import)"
    )
    summary: str
    deltas: list[Delta] = Field(description="normalised deltas, in the order they were made")
    status: Literal["open", "resolved"]
    created_at: str | None = None


class SessionReadyData(_Model):
    session_id: str
    title: str
    initial_tree: Node
    rev: int
    seq: int
    replay: bool = Field(description="true when the missed frames follow; false when this is a snapshot")
    protocol_version: int = Field(description="the server's protocol version (canopy.protocol.PROTOCOL_VERSION)")
    limits: TreeLimitsData
    assistant: AssistantInfo | None = Field(None, description="which assistant answers prompts in this session")
    role: Role = Field("owner", description="the caller's role in this session")
    owner: str | None = Field(None, description="the owner's username")
    review_mode: bool = Field(False, description="assistant turns propose changes instead of applying them")
    proposals: list[ProposalData] = Field(default_factory=list, description="open proposals, oldest first")


class SessionReady(_ServerFrame):
    type: Literal["session_ready"]
    data: SessionReadyData


class ChatHistoryData(_Model):
    messages: list[ChatMessageData]


class ChatHistory(_ServerFrame):
    type: Literal["chat_history"]
    data: ChatHistoryData


class AssistantResponseData(_Model):
    text: str
    chunk: bool
    cancelled: bool | None = None
    truncated: Truncated | None = Field(
        None,
        description="final frame only: the model stopped before finishing its answer, at its output token "
        "limit (length) or because the provider's content filter cut it (content_filter)",
    )


class AssistantResponse(_ServerFrame):
    type: Literal["assistant_response"]
    data: AssistantResponseData


class ReasoningData(_Model):
    text: str
    steps: list[str]


class Reasoning(_ServerFrame):
    type: Literal["reasoning"]
    data: ReasoningData


class DebugData(_Model):
    model_config = ConfigDict(extra="allow", frozen=True)
    provider: str
    total_ms: float
    first_tree_update_ms: float | None = None
    tree_updates: int


class Debug(_ServerFrame):
    type: Literal["debug"]
    data: DebugData


class TreeUpdateData(_Model):
    delta: Delta
    rev: int
    origin: Literal["assistant", "user", "undo", "proposal"]
    actor: ActorData | None = Field(None, description="who made the change (always sent)")


class TreeUpdate(_ServerFrame):
    type: Literal["tree_update"]
    data: TreeUpdateData


class TreeSnapshotData(_Model):
    tree: Node
    rev: int


class TreeSnapshot(_ServerFrame):
    type: Literal["tree_snapshot"]
    data: TreeSnapshotData


class ChatMessage(_ServerFrame):
    type: Literal["chat_message"]
    data: ChatMessageData


class Pong(_ServerFrame):
    type: Literal["pong"]
    data: Empty


class PresenceUser(_Model):
    username: str
    role: Role
    tabs: int = Field(description="tabs this user has attached to the session")
    selected: str | None = Field(description="the node selected in the user's most recently active tab")
    typing: bool


class PresenceData(_Model):
    users: list[PresenceUser]


class Presence(_ServerFrame):
    type: Literal["presence"]
    data: PresenceData


class ProposalFrameData(_Model):
    proposal: ProposalData


class Proposal(_ServerFrame):
    type: Literal["proposal"]
    data: ProposalFrameData


class ConflictInfo(_Model):
    index: int
    code: int
    message: str


class ProposalResolvedData(_Model):
    proposal_id: str
    accepted: list[int] = Field(description="indices applied")
    rejected: list[int] = Field(description="indices not accepted by the decider")
    conflicts: list[ConflictInfo] = Field(description="indices accepted but skipped: they no longer applied")
    decided_by: str | None = Field(None, description="the username of the editor who decided")


class ProposalResolved(_ServerFrame):
    type: Literal["proposal_resolved"]
    data: ProposalResolvedData


class SessionUpdatedData(_Model):
    title: str = Field(description="the session's title now")
    review_mode: bool = Field(description="whether assistant turns, agents and imports propose instead of applying")


class SessionUpdated(_ServerFrame):
    type: Literal["session_updated"]
    data: SessionUpdatedData


class UndoStateData(_Model):
    can_undo: bool = Field(description="an `undo` from this user would find a change set of theirs to revert now")
    can_redo: bool = Field(description="a `redo` from this user would find a change set of theirs to re-apply now")


class UndoState(_ServerFrame):
    """Per user (undo is per user): to each of the user's tabs on attach and when it changes; no seq."""

    type: Literal["undo_state"]
    data: UndoStateData


class Error(_ServerFrame):
    type: Literal["error"]
    data: dict[str, Any]
    error: ErrorInfo


ServerFrame = Annotated[
    SessionReady
    | ChatHistory
    | AssistantResponse
    | Reasoning
    | Debug
    | TreeUpdate
    | TreeSnapshot
    | ChatMessage
    | Pong
    | Error
    | Presence
    | Proposal
    | ProposalResolved
    | SessionUpdated
    | UndoState,
    Field(discriminator="type"),
]
server_frames: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


def json_schema() -> dict[str, Any]:
    return {
        "client_to_server": client_frames.json_schema(),
        "server_to_client": server_frames.json_schema(),
    }
