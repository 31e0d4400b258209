"""Seed-compatible APIs: the documented endpoints of the systems this project replaces,
as thin handlers over the core (online models, lifecycle, ingest,
training jobs, monitoring). No logic of the platform is implemented twice here: a compat
handler translates the seed's request into a core call and the core's answer into the seed's
response shape.

- `online/`: the online-learning platform (seeds 000, 001) under /api/v1/online/...
- `engine/`: the ML engine platform (seeds 002, 004) at the seed's own paths, under /api/v1
  and under /api/v1/engine (`engine.mount`)
- `ml_service/`: the ML service (seed 003) under /api/v1/ml/...

Each function group's `functions/<group>/main.py` lists the compat routes it serves; `shared/`
never imports this package.
"""
