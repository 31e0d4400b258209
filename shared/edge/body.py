"""Request bodies: the size bound (`MAX_BODY_BYTES`) and JSON validated against a pydantic
model (bad JSON → 400, wrong shape → 422 naming the field).

A batch body (one list of many rows) is read by orjson and its shape checked in bulk
(`parse_rows`): pydantic would build the same plain values, only about 2.5 times slower. Whatever orjson
might read otherwise than pydantic goes through pydantic, so both give one answer: orjson
refuses NaN, 1e400 and lone surrogates (pydantic reads the first two as floats) and reads an
integer past 64 bits as a float (pydantic keeps it an int).
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive

from shared.edge.request import edge_request_of
from shared.errors import ApiError

ModelT = TypeVar("ModelT", bound=BaseModel)

# 19 digits in a row may be an integer past 64 bits, which orjson reads as a float; a body
# with digits as 0 and all else as a space is searched for them (a regex: ten times slower)
_DIGITS_ONLY = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
_LONG_DIGITS = b"0" * 19


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body exceeds MAX_BODY_BYTES ({limit} bytes)")


def limited(receive: Receive, limit: int) -> Receive:
    """`receive` that refuses (413) once the body passes `limit` bytes, whatever
    Content-Length said (a chunked body declares none)."""
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return limited_receive


async def read_body(request: Request) -> bytes:
    """The JSON body, kept on the EdgeRequest for the Idempotency-Key's hash."""
    edge = edge_request_of(request.scope)  # its headers: parsed once, by the edge
    content_type = edge.headers.get(b"content-type", b"")
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = await body_of(request)
    if not body.strip():
        raise ApiError(400, "empty_body", "the request body is empty; send a JSON object")
    edge.body = body
    return body


async def body_of(request: Request) -> bytes:
    """`await request.body()` without Starlette's async generator per request (the hot
    path). Cached where Starlette caches it, so `request.body()` / `stream()` still work."""
    body: bytes | None = getattr(request, "_body", None)
    if body is not None:
        return body
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body
    return body


def describe(exc: ValidationError) -> ApiError:
    """A pydantic failure as the answer: 400 for bad JSON, else 422 naming up to 5 fields."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "invalid_json", f"the body is not valid JSON: {first['msg']}")
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        parts.append(f"{where or 'body'}: {err['msg']}")
    return ApiError(422, "validation_error", "; ".join(parts))


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """Parse and validate a JSON body; bad JSON → 400, wrong shape → 422 naming the field."""
    body = await read_body(request)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise describe(exc) from None


async def parse_rows(request: Request, model: type[BaseModel], field: str) -> list[Any]:
    """The non-empty list `field` of a body that holds that field alone (`model`: its pydantic
    schema, which answers any other body exactly as `parse_body` does, errors included)."""
    body = await read_body(request)
    if _LONG_DIGITS not in body.translate(_DIGITS_ONLY):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None  # pydantic reads it, or names what is wrong
        if type(data) is dict and len(data) == 1:
            rows = data.get(field)
            if type(rows) is list and rows:
                return rows
    try:
        rows = getattr(model.model_validate_json(body), field)
    except ValidationError as exc:
        raise describe(exc) from None
    return list(rows)


async def optional_body(request: Request, model: type[ModelT]) -> ModelT:
    """Like parse_body, but an empty body means the model's defaults."""
    body = await body_of(request)
    if not body.strip():
        edge_request_of(request.scope).body = body
        return model()
    return await parse_body(request, model)
