"""`ultramedical serve --model DIR [--port P] [--config PRESET] [--serve.key VALUE ...]`: the reward service.

Serves POST /v1/rewards (plus /v1/reload, /v1/stats, /healthz, /openapi.json) on serve.host:serve.port
with Ray Serve, until interrupted. Set ULTRAMEDICAL_API_TOKEN (or serve.token_file) to require a token.
Replicas get serve.cpus_per_replica CPUs and serve.gpus_per_replica GPUs; /v1/reload reaches them all.
"""

from __future__ import annotations

import argparse
import sys

from jobs.cli.train import add_config_arguments

HELP = "serve a reward model over HTTP with Ray Serve (dynamic batching, autoscaling, hot reload)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help=HELP, description=HELP)
    add_config_arguments(parser)
    parser.add_argument("--model", required=True, help="reward-model directory (HF format) to serve")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: serve.port)")
    parser.add_argument("--host", default=None, help="bind address (default: serve.host, 127.0.0.1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ultramedical.config import load_config

    overrides = list(args.overrides)
    if args.port is not None:
        overrides += ["--serve.port", str(args.port)]
    if args.host is not None:
        overrides += ["--serve.host", args.host]
    config = load_config(args.config, overrides)  # validates --port like any other serve.* value

    import ray
    from ray import serve

    from actors.reward_service import build_app
    from ultramedical.serving.api import resolve_token

    s = config.serve
    if resolve_token(s.token_file) is None and s.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {s.host} without an API token; anyone who can reach it can score",
            file=sys.stderr,
        )
    ray.init(ignore_reinit_error=True)  # joins RAY_ADDRESS's cluster when set, else starts a local one
    serve.start(http_options={"host": s.host, "port": s.port})
    print(f"reward service: http://{s.host}:{s.port}/v1/rewards (model {args.model})", flush=True)
    try:
        serve.run(build_app(config, args.model), name="reward", route_prefix="/", blocking=True)
    except KeyboardInterrupt:  # Ctrl-C is how a foreground server stops: a clean exit, not a traceback
        serve.shutdown()
    return 0
