"""The reward-scoring HTTP service's library part (schemas, limits, auth, FastAPI app; no Ray in `api`),
and `rollout`, which publishes a new user_config to every replica of a running Ray Serve deployment.

The Ray Serve deployment that serves it lives in `actors.reward_service`.
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
