"""The reward-scoring HTTP service's library part (schemas, limits, auth, FastAPI app); no Ray here.

The Ray Serve deployment that serves it lives in `actors.reward_service`.
"""

from ultramedical.serving.api import (
    TOKEN_ENV,
    ReloadBusy,
    ReloadRejected,
    RewardRequest,
    RewardResponse,
    create_app,
    resolve_token,
    to_conversation,
    token_digest,
    token_matches,
)

__all__ = [
    "TOKEN_ENV",
    "ReloadBusy",
    "ReloadRejected",
    "RewardRequest",
    "RewardResponse",
    "create_app",
    "resolve_token",
    "to_conversation",
    "token_digest",
    "token_matches",
]
