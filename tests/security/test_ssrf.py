"""Outbound HTTP: a ticker source calls only hosts in TICKER_ALLOWED_HOSTS, follows no
redirect, and a failure says nothing of the upstream (no status, address, port or error).

Configuration time: a base_url naming anything else (URL tricks included) → 422
`host_not_allowed` naming the setting; the series is not touched. Fetch time: whatever the
allowed upstream does → 502 `upstream_unavailable` with a fixed message; nothing observed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compat.settings import compat_settings
from shared.outbound import OutboundPolicy, parse_allowed
from shared.settings import ConfigError, load_settings, reset_settings_cache
from tests.fake_ticker import FakeTicker, RedirectingTicker, allow_fake_hosts
from tests.security.conftest import assert_envelope
from tests.servers import free_port

SOURCE = "/api/v1/series/t/source"


def ticker(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "ticker", "pair": "BTC-USD", "base_url": base_url, **extra}


async def series_state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/series/t")
    return response.json() if response.status_code == 200 else {"absent": True}


# {allowed} is the allowed fake's http://127.0.0.1:<port>; {port} its port.
CONFIG_TRICKS = [
    "http://127.0.0.1:{other}",  # loopback, a port not allowed
    "http://localhost:{port}",  # the same service, by another name
    "{allowed}?",  # a query would swallow the fixed suffix
    "{allowed}/?x=",
    "{allowed}#",
    "{allowed}/x#frag",
    "http://api.coinbase.com@127.0.0.1:{port}",  # userinfo: the host is after the @
    "http://127.0.0.1:{port}@169.254.169.254",
    "https://api.coinbase.com:443@evil.example",
    "http://169.254.169.254",
    "http://169.254.169.254/computeMetadata/v1",
    "http://metadata.google.internal",
    "https://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]:{port}",
    "http://[::ffff:127.0.0.1]:{port}",
    "http://2130706433:{port}",  # 127.0.0.1 as one decimal
    "http://0x7f.0.0.1:{port}",
    "http://0177.0.0.1:{port}",
    "http://127.1:{port}",
    "http://0.0.0.0:{port}",
    "https://api.coinbase.com.evil.example",
    "https://evil.example/api.coinbase.com",
    "https://api.coinbase.com:8443",  # the allowed host on another port
    "http://api.coinbase.com",  # a bare entry allows https only
    "https://api.coinbase.com./",  # trailing dot: another name
    "{allowed}/../../admin",
    "{allowed}/%2e%2e/admin",
    "{allowed}/a%2fb",
    "{allowed}\\@evil.example",
    "https://api.coinbase.com\t.evil.example",
]


@pytest.mark.parametrize("trick", CONFIG_TRICKS)
async def test_a_host_not_allowed_is_refused_when_configured(
    client: httpx.AsyncClient, ticker_port: int, trick: str
) -> None:
    url = trick.format(
        allowed=f"http://127.0.0.1:{ticker_port}", port=ticker_port, other=free_port()
    )
    before = await series_state(client)
    response = await client.put(SOURCE, json=ticker(url))
    assert response.status_code == 422, (url, response.text)
    assert_envelope(response, 422)
    code = response.json()["error"]["code"]
    assert code in ("host_not_allowed", "validation_error")  # the latter: not even http(s)://
    if code == "host_not_allowed":
        assert "TICKER_ALLOWED_HOSTS" in response.json()["error"]["message"]
    assert await series_state(client) == before


async def test_allowed_hosts_are_exact(client: httpx.AsyncClient, ticker_port: int) -> None:
    """The allowed fake, with a trailing slash or a plain path, and the default host (checked
    at configuration only: nothing is fetched from the internet here)."""
    for url in (
        f"http://127.0.0.1:{ticker_port}",
        f"http://127.0.0.1:{ticker_port}/",
        f"http://127.0.0.1:{ticker_port}/proxy/coinbase",
        "https://api.coinbase.com",
        "https://API.Coinbase.com:443",
    ):
        assert (await client.put(SOURCE, json=ticker(url))).status_code == 200, url


def assert_generic_502(response: httpx.Response, port: int) -> None:
    assert_envelope(response, 502, "upstream_unavailable")
    message = response.json()["error"]["message"]
    for leak in (str(port), "127.0.0.1", "refused", "Connect", "HTTP", "302", "500", "404"):
        assert leak not in message, message


async def pull_fails_generically(client: httpx.AsyncClient, url: str, port: int) -> None:
    source = ticker(url, retries=1, backoff_seconds=0.01, timeout_seconds=0.5)
    assert (await client.put(SOURCE, json=source)).status_code == 200
    before = await series_state(client)
    assert_generic_502(await client.post("/api/v1/series/t/pull"), port)
    assert await series_state(client) == before


@pytest.mark.parametrize(
    ("script", "answer"),
    [
        (["500", "500"], None),
        (["404"], None),
        (["429", "429"], None),
        (["hang", "hang"], None),
        ([], {"data": {"amount": "not a number"}}),
        ([], {"data": {"amount": "-1"}}),
        ([], {"unexpected": True}),
    ],
)
async def test_upstream_failures_say_nothing_of_the_upstream(
    client: httpx.AsyncClient, ticker_port: int, script: list[str], answer: Any
) -> None:
    class Odd(FakeTicker):
        hang_seconds = 1.0

        def answer(self, method: str, path: str, body: dict[str, Any]) -> Any:
            return (200, answer) if answer is not None else super().answer(method, path, body)

    with Odd([1.0], script=list(script), port=ticker_port) as fake:
        await pull_fails_generically(client, fake.url, ticker_port)


async def test_connection_refused_is_generic(client: httpx.AsyncClient, ticker_port: int) -> None:
    # the allowed port, with nothing listening on it
    await pull_fails_generically(client, f"http://127.0.0.1:{ticker_port}", ticker_port)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_to_elsewhere_are_not_followed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """An allowed host redirecting to a host that is not (here: another local fake, which
    must never be called) → 502, and the target sees no request."""
    allowed_port = free_port()
    allow_fake_hosts(monkeypatch, allowed_port)
    with FakeTicker([99.0]) as target:
        location = f"{target.url}/v2/prices/BTC-USD/spot"
        with RedirectingTicker(location, status, port=allowed_port) as fake:
            await pull_fails_generically(client, fake.url, allowed_port)
            assert fake.requests  # it was asked, and answered with a redirect
        assert target.requests == []


async def test_health_answers_while_a_ticker_hangs(
    client: httpx.AsyncClient, ticker_port: int
) -> None:
    import asyncio

    with FakeTicker([1.0], script=["hang"], port=ticker_port) as fake:
        source = ticker(fake.url, retries=0, timeout_seconds=0.5)
        assert (await client.put(SOURCE, json=source)).status_code == 200
        pull = asyncio.create_task(client.post("/api/v1/series/t/pull"))
        assert (await client.get("/health")).status_code == 200
        assert_generic_502(await pull, ticker_port)


# ----- the setting itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TICKER_ALLOWED_HOSTS": "api.coinbase.com,http://x/path"}, "TICKER_ALLOWED_HOSTS"),
        ({"TICKER_ALLOWED_HOSTS": "host:8080"}, "TICKER_ALLOWED_HOSTS"),  # a port needs scheme
        ({"TICKER_ALLOWED_HOSTS": "user@host"}, "TICKER_ALLOWED_HOSTS"),
    ],
)
def test_bad_outbound_settings_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    with pytest.raises(ConfigError, match=named):
        load_settings()
    reset_settings_cache()


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254", "https://api.coinbase.com?x", "http://u@127.0.0.1:9999"]
)
def test_a_market_data_url_not_allowed_stops_the_compat_start(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("MARKET_DATA_BASE_URL", url)
    reset_settings_cache()
    with pytest.raises(ConfigError, match="MARKET_DATA_BASE_URL"):
        compat_settings()
    reset_settings_cache()


def test_market_data_host_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_DATA_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("TICKER_ALLOWED_HOSTS", "http://127.0.0.1:9999")
    reset_settings_cache()
    assert compat_settings().market_data_base_url == "http://127.0.0.1:9999"
    reset_settings_cache()


# ----- the URL we build: a property ------------------------------------------------------------

POLICY = OutboundPolicy(parse_allowed("api.coinbase.com,http://127.0.0.1:8080"))
ALLOWED = {("https", "api.coinbase.com", 443), ("http", "127.0.0.1", 8080)}
PIECES = st.sampled_from(
    [
        "http://",
        "https://",
        "api.coinbase.com",
        "127.0.0.1",
        ":8080",
        ":443",
        "@",
        "?",
        "#",
        "/",
        "..",
        "%2e",
        "\\",
        "evil.example",
        ".",
        "[::1]",
        "user:pw",
        "\t",
        " ",
    ]
)


@given(st.lists(PIECES, min_size=1, max_size=8).map("".join))
def test_an_accepted_base_url_always_reaches_an_allowed_origin(base_url: str) -> None:
    """Whatever string is accepted, the URL we call (parsed as httpx does) goes to an allowed
    scheme, host and port, and ends with the fixed suffix."""
    try:
        origin, path = POLICY.base(base_url)
    except Exception as exc:  # refused: must be our 422, never a crash
        assert getattr(exc, "code", None) == "host_not_allowed", exc
        return
    url = httpx.URL(origin.url(f"{path}/v2/prices/BTC-USD/spot"))
    assert (url.scheme, url.host, url.port or 443) in ALLOWED
    assert url.path.endswith("/v2/prices/BTC-USD/spot") and not url.query and not url.fragment
    assert ".." not in url.path.split("/")
