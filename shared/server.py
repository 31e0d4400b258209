"""`python -m shared.server`: the one launcher of every served process (README: Server
protections).

The image's CMD, `make run` (scripts/serve.py), and the app processes of the tests and the
bench all start here, so each is served the same way: uvicorn (uvloop + httptools) with the
connection protections of shared/connection_guard.py, idle keep-alive connections closed after
KEEPALIVE_TIMEOUT_SECONDS, WEB_CONCURRENCY worker processes, and the open-file limit raised
so the connection cap, not EMFILE, decides who is turned away.

Which app: `--app module:attr`, or else what `functions-framework --asgi` would serve, found
the same way: FUNCTION_TARGET (`--target`) in FUNCTION_SOURCE (`--source`), with
FUNCTION_SIGNATURE_TYPE; each worker builds it with functions_framework.aio.create_asgi_app.
"""

from __future__ import annotations

import argparse
import os
import resource

import uvicorn
from starlette.types import ASGIApp

from shared import hashseed
from shared.settings import get_settings

PROTOCOL = "shared.connection_guard:GuardedHttpProtocol"
FUNCTION_APP = "shared.server:function_app"
# An "unlimited" hard limit still needs a number to set the soft limit to.
OPEN_FILES_CEILING = 1 << 20


def function_app() -> ASGIApp:
    """The app functions-framework's CLI would build from FUNCTION_TARGET / FUNCTION_SOURCE
    (a factory, so that each worker process builds its own)."""
    from functions_framework.aio import create_asgi_app

    return create_asgi_app(
        os.environ.get("FUNCTION_TARGET"),
        os.environ.get("FUNCTION_SOURCE"),
        os.environ.get("FUNCTION_SIGNATURE_TYPE", "http"),
    )


def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (containers often start at 1024); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_CEILING if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def serve(
    app: str | None = None,
    *,
    host: str = "0.0.0.0",  # a container listens on every interface
    port: int = 8080,
    log_level: str = "warning",
) -> None:
    """Serve `app` ("module:attr"), or the functions-framework target when None."""
    settings = get_settings()  # an invalid environment stops here, naming the variable
    raise_open_file_limit()
    uvicorn.run(
        app or FUNCTION_APP,
        factory=app is None,
        host=host,
        port=port,
        workers=settings.web_concurrency,
        http=PROTOCOL,
        loop="auto",
        timeout_keep_alive=settings.keepalive_timeout_seconds,  # type: ignore[arg-type]
        log_level=log_level,
        access_log=False,  # shared.edge writes one access line per request itself
    )


def main(argv: list[str] | None = None) -> None:
    hashseed.ensure_fixed()  # before anything: a process with another seed re-executes
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", default=None, help="module:attr; default the function target")
    parser.add_argument("--target", default=None, help="FUNCTION_TARGET (functions-framework)")
    parser.add_argument("--source", default=None, help="FUNCTION_SOURCE (functions-framework)")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    # workers are separate processes: they read the target from the environment
    if args.target is not None:
        os.environ["FUNCTION_TARGET"] = args.target
    if args.source is not None:
        os.environ["FUNCTION_SOURCE"] = args.source
    serve(args.app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
