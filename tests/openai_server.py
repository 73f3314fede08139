"""An OpenAI-compatible server for the tests: transformers' own ``transformers serve`` (4.57),
serving a local Llama checkpoint through ``/v1/chat/completions`` (streamed) on loopback.

Run by tests/openai_env.py with the Python of a virtual environment that holds
``transformers[serving]`` and torch. ``transformers serve`` starts uvicorn itself and exposes
neither TLS nor API keys, so this wrapper hands its FastAPI app to uvicorn with these options of
its own (the rest are ``transformers serve``'s: ``--host``, ``--port``, ``--device`` ...):

    --ssl-certfile PATH, --ssl-keyfile PATH   uvicorn's own TLS
    --api-key-env NAME  refuse requests without 'Authorization: Bearer $NAME' (401)
    --stall-after N     answer N POST requests, then never answer again (a stalled server)
    --stall-key-env NAME  with --api-key-env: a second key, accepted too, whose requests alone
                        count towards --stall-after and stall (one server serves both the tests
                        that need it well and the one that needs it stalled)
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

import uvicorn


def _middleware(app, args) -> None:
    from fastapi.responses import JSONResponse

    expected = f"Bearer {os.environ[args.api_key_env]}" if args.api_key_env else None
    stall = f"Bearer {os.environ[args.stall_key_env]}" if args.stall_key_env else None
    answered = 0

    @app.middleware("http")
    async def check(request, call_next):
        nonlocal answered
        health = request.url.path == "/health"  # the tests' readiness probe
        auth = request.headers.get("authorization")
        if expected and not health and auth not in (expected, stall):
            return JSONResponse({"error": {"message": "missing or wrong API key"}},
                                status_code=401)
        if request.method == "POST" and (stall is None or auth == stall):
            answered += 1
            if args.stall_after and answered > args.stall_after:
                await asyncio.sleep(3600)  # a stalled server: the request is never answered
        return await call_next(request)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ssl-certfile", default="")
    p.add_argument("--ssl-keyfile", default="")
    p.add_argument("--api-key-env", default="")
    p.add_argument("--stall-after", type=int, default=0)
    p.add_argument("--stall-key-env", default="")
    args, rest = p.parse_known_args()
    serve = uvicorn.run

    def run(app, **kwargs):
        _middleware(app, args)
        kwargs["timeout_graceful_shutdown"] = 1  # stalled requests never end by themselves
        if args.ssl_certfile:
            kwargs.update(ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
        serve(app, **kwargs)

    uvicorn.run = run  # transformers serve calls uvicorn.run(app, host=, port=, log_level=)
    from transformers.commands.transformers_cli import main as cli

    sys.argv = ["transformers", "serve", *rest]
    cli()


if __name__ == "__main__":
    main()
