"""The HTTP edge every function group shares, one concept per module (architecture.md §3):

- `request`: `EdgeRequest`, the one object the edge builds per request; its steps fill it in
  and handlers read the validated tenant and Idempotency-Key from it.
- `steps`: the edge checks as small step objects, composed once per settings (request id,
  traceparent, CORS, tenant shape, deadline; then preflight, body size, Idempotency-Key shape,
  tenant required, admin key, tenant key, rate limit).
- `errors`: the exception table (type → status, code, Retry-After) that the state, registry
  and compat packages register into; `api_error_of` is the one mapping.
- `codec`: JSON out (non-finite floats as null) and the JSON response.
- `body`: reading and validating JSON bodies against pydantic models, and the size bound.
- `idempotency`: the Idempotency-Key's shape and the key a handler stores.
- `cors`: the CORS policy and its headers.
- `router`: routes indexed by method and path (404/405).
- `endpoints`: /health and /metrics.
- `function_app`: `FunctionApp`, the group's ASGI app (steps, router, error envelope, access
  log, span) and `build_router`.
- `bridge`: the functions-framework entry point forwarding to that app.

Nothing is imported here: the state and registry packages import `shared.edge.errors` to
register their exceptions, and must not pull the whole edge in with it.
"""
