"""The reward-scoring HTTP service's library part: schemas, limits, auth and the FastAPI app, no Ray.

The Ray Serve deployment that serves it lives in `actors.reward_service`, and publishing a new user_config
to every replica of a running deployment in `actors.serve_rollout`.
"""

from ultramedical.serving.api import (
    TOKEN_ENV,
    ReloadBusy,
    ReloadFailed,
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
    "ReloadFailed",
    "ReloadRejected",
    "RewardRequest",
    "RewardResponse",
    "create_app",
    "resolve_token",
    "to_conversation",
    "token_digest",
    "token_matches",
]
