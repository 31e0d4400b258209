"""Seed-compatible APIs: the documented endpoints of the systems this project replaces
(/work/shared/seeds), as thin handlers over the core (online models, lifecycle, ingest,
training jobs, monitoring). No logic of the platform is implemented twice here: a compat
handler translates the seed's request into a core call and the core's answer into the seed's
response shape.

- `online_*`: the online-learning platform (seeds 000, 001) under /api/v1/online/...
- `engine_*`: the ML engine platform (seeds 002, 004) at the seed's own paths, under /api/v1
  and under /api/v1/engine
- `ml_service`: the ML service (seed 003) under /api/v1/ml/...
- `routes.routes_for(group)`: what each function group mounts.
"""
