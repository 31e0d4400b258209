"""chantilly 0.3.0 as `make bench` serves it: run by .bench/chantilly-venv's Python, never ours.

gunicorn loads `chantilly_wsgi:serve()` (with this folder on its path); `python chantilly_wsgi.py`
writes the dill bytes of StandardScaler | LinearRegression, the model chantilly's
`POST /api/model/<name>` expects, built by the River of chantilly's venv.

The shim: chantilly's flavors annotate with `river.metrics.Metric`, which River 0.26 keeps only
in `river.metrics.base`; naming it again in `river.metrics` is all chantilly needs to import.
Configuration comes from chantilly's own env vars (STORAGE_BACKEND, REDIS_HOST/PORT/DB).
"""

from __future__ import annotations

import sys
from typing import Any

import river.metrics
import river.metrics.base

river.metrics.Metric = river.metrics.base.Metric  # type: ignore[attr-defined]


def serve() -> Any:
    import chantilly  # after the shim: its flavors module reads river.metrics.Metric

    return chantilly.create_app()


def model_bytes() -> bytes:
    import dill
    from river import linear_model, preprocessing

    return bytes(dill.dumps(preprocessing.StandardScaler() | linear_model.LinearRegression()))


if __name__ == "__main__":
    sys.stdout.buffer.write(model_bytes())
