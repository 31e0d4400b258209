"""The load client's response reader: status, body framing, and a server that closes."""

from __future__ import annotations

import asyncio

from bench.load import read_response


async def read(raw: bytes) -> tuple[tuple[int, bool], bytes]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    answer = await read_response(reader)
    return answer, await reader.read()


async def test_a_keep_alive_response_is_read_to_the_end_of_its_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 404 Not Found\r\n"
    (status, keep_alive), rest = await read(raw)
    assert (status, keep_alive) == (200, True)
    assert rest == b"HTTP/1.1 404 Not Found\r\n"  # the next response starts right after


async def test_connection_close_is_reported_so_the_client_reconnects() -> None:
    raw = b"HTTP/1.1 201 CREATED\r\nConnection: close\r\nContent-Length: 3\r\n\r\n{}\n"
    (status, keep_alive), rest = await read(raw)
    assert (status, keep_alive) == (201, False)
    assert rest == b""
