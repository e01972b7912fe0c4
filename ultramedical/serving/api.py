"""The reward service's HTTP surface, free of Ray: schemas, limits, bearer auth and the FastAPI app.

`create_app(scorer, settings, token_sha256)` builds the app around any object with the `Scorer` shape, so
the Ray Serve deployment (actors/reward_service.py) stays a thin owner of the model and its batching.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ultramedical.config import ServeConfig
from ultramedical.data.schemas import Message

TOKEN_ENV = "ULTRAMEDICAL_API_TOKEN"
OPEN_PATHS = frozenset({"/healthz"})  # the only routes served without a token (load balancers probe them)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class PairItem(_Strict):
    """Scored as the conversation [user: prompt, assistant: response]."""

    prompt: str = Field(min_length=1)
    response: str


class ConversationItem(_Strict):
    """A whole conversation; its last message is the assistant turn being judged."""

    messages: list[ChatMessage] = Field(min_length=2)

    @model_validator(mode="after")
    def _ends_with_answer(self) -> ConversationItem:
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message must be the assistant turn being judged")
        if not any(m.role == "user" for m in self.messages[:-1]):
            raise ValueError("the conversation needs a user turn before the judged answer")
        return self


Item = Annotated[PairItem | ConversationItem, Field(union_mode="left_to_right")]


class RewardRequest(_Strict):
    items: list[Item] = Field(min_length=1)


class RewardResponse(BaseModel):
    rewards: list[float] = Field(description="one reward per item, in request order")
    model: str = Field(description="the checkpoint that scored every item of this request")


class ReloadRequest(_Strict):
    model: str = Field(min_length=1, description="a local reward-model directory (HF format)")


class ReloadResponse(BaseModel):
    model: str
    previous: str
    seconds: float
    replica: str | None = Field(
        None, description="the replica that checked and swapped; the others follow as Serve reconfigures them"
    )


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    replica: str | None = Field(None, description="the Serve replica that answered")


class ReloadRejected(ValueError):
    """The new checkpoint is unusable; the service keeps the old one."""


class ReloadBusy(RuntimeError):
    """Another reload is still loading."""


class ReloadFailed(RuntimeError):
    """The checkpoint loaded, but it could not be made the deployment's; every replica keeps the old one."""


class Scorer(Protocol):
    """What the app needs from whoever holds the model (the Serve replica, or a fake in tests)."""

    replica_id: str | None

    @property
    def model_path(self) -> str: ...

    async def score(self, conversations: list[list[Message]]) -> tuple[list[float], str]: ...

    async def reload(self, model_dir: str) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...


def to_conversation(item: PairItem | ConversationItem) -> list[Message]:
    """The chat messages the reward model reads for one item."""
    if isinstance(item, PairItem):
        return [{"role": "user", "content": item.prompt}, {"role": "assistant", "content": item.response}]
    return [{"role": m.role, "content": m.content} for m in item.messages]


def item_chars(item: PairItem | ConversationItem) -> int:
    if isinstance(item, PairItem):
        return len(item.prompt) + len(item.response)
    return sum(len(m.content) for m in item.messages)


def limit_errors(request: RewardRequest, max_items: int, max_item_chars: int) -> list[dict[str, Any]]:
    """Violations of the configured limits, in FastAPI's 422 error format (empty when all is well)."""
    if len(request.items) > max_items:
        msg = f"{len(request.items)} items, more than the limit of {max_items} per request"
        return [{"loc": ["body", "items"], "msg": msg, "type": "too_long"}]
    errors = []
    for index, item in enumerate(request.items):
        chars = item_chars(item)
        if chars > max_item_chars:
            msg = f"item {index} has {chars} characters, more than the limit of {max_item_chars}"
            errors.append({"loc": ["body", "items", index], "msg": msg, "type": "too_long"})
    return errors


def token_digest(token: str) -> str:
    """SHA-256 of a token: what replicas keep, so the secret itself is not stored in Serve's state."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def resolve_token(token_file: str | None) -> str | None:
    """The API token from ULTRAMEDICAL_API_TOKEN, else from `token_file`; None means auth is off."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    if token_file is None:
        return None
    token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
    if not token:  # fail closed: a configured but empty file must not silently disable auth
        raise ValueError(f"serve.token_file {token_file} is empty")
    return token


def token_matches(authorization: str | None, token_sha256: str) -> bool:
    """Whether an `Authorization: Bearer <token>` header carries the token (constant-time compare)."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    return hmac.compare_digest(token_digest(presented.strip()), token_sha256)


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _route_path(scope: Scope) -> str:
    """The path inside the app: Serve mounts an app under its route prefix (`root_path`)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return (path[len(root) :] or "/") if root and path.startswith(root) else path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class BearerAuthMiddleware:
    """401 unless the request carries the token; outermost, so unauthenticated bodies are never read."""

    def __init__(self, app: Any, token_sha256: str | None):
        self.app, self.token_sha256 = app, token_sha256

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token_sha256 is not None and _route_path(scope) not in OPEN_PATHS:
            if not token_matches(_header(scope, b"authorization"), self.token_sha256):
                await _reply(send, 401, "missing or invalid bearer token", {"www-authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """413 when the declared Content-Length or the bytes actually sent exceed `max_bytes`.

    The body is read (at most max_bytes of it) before the app parses any JSON, then replayed to it, so a
    chunked upload without Content-Length is bounded too.
    """

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _reply(send, 400, "invalid Content-Length")
                return
            if int(declared) > self.max_bytes:
                await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nobody is left to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # later calls wait for the disconnect, as the server's would
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


def create_app(scorer: Scorer, settings: ServeConfig, token_sha256: str | None) -> FastAPI:
    """The service's FastAPI app: /v1/rewards, /v1/reload, /v1/stats and the open /healthz."""
    app = FastAPI(
        title="UltraMedical reward service",
        version="1",
        description="Scores (prompt, response) pairs or whole conversations with a reward model.",
    )

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz() -> HealthResponse:
        return HealthResponse(model=scorer.model_path, replica=scorer.replica_id)

    @app.post("/v1/rewards", response_model=RewardResponse)
    async def rewards(request: RewardRequest) -> RewardResponse:
        errors = limit_errors(request, settings.max_items, settings.max_item_chars)
        if errors:
            raise RequestValidationError(errors)
        values, model = await scorer.score([to_conversation(item) for item in request.items])
        return RewardResponse(rewards=values, model=model)

    @app.post("/v1/reload", response_model=ReloadResponse)
    async def reload(request: ReloadRequest) -> ReloadResponse:
        if token_sha256 is None:  # swapping the model is an admin act: never open to anonymous callers
            raise HTTPException(403, f"reload needs an API token ({TOKEN_ENV} or serve.token_file)")
        try:
            return ReloadResponse(**await scorer.reload(request.model))
        except ReloadRejected as exc:
            raise HTTPException(422, str(exc)) from None
        except ReloadBusy as exc:
            raise HTTPException(409, str(exc)) from None
        except ReloadFailed as exc:
            raise HTTPException(503, str(exc)) from None

    @app.get("/v1/stats")
    async def stats() -> dict[str, Any]:
        return scorer.stats()

    # Added last runs first: auth, then the size check, then FastAPI's own parsing.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BearerAuthMiddleware, token_sha256=token_sha256)
    return app
