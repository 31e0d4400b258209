"""Configuration is validated at start: a bad value stops the process naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.settings import ConfigError, load_settings
from tests.servers import ROOT


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STATE_URL", "mysql://db"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("SNAPSHOT_EVERY", "0"),
        ("MAX_BODY_BYTES", "-1"),
        ("ENV", "staging"),
        ("N_LAGS", "0"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_memory_state_refuses_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_URL", "memory://")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with pytest.raises(ConfigError, match="STATE_URL"):
        load_settings()
    monkeypatch.setenv("STATE_URL", "redis://localhost:6379/0")
    assert load_settings().web_concurrency == 4


def test_streams_stay_below_the_connection_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each SSE stream holds a connection: as many as MAX_CONNECTIONS would starve requests."""
    monkeypatch.setenv("MAX_CONNECTIONS", "50")
    for clients in ("50", "51"):
        monkeypatch.setenv("STREAM_MAX_CLIENTS", clients)
        with pytest.raises(ConfigError, match=r"STREAM_MAX_CLIENTS.*MAX_CONNECTIONS"):
            load_settings()
    monkeypatch.setenv("STREAM_MAX_CLIENTS", "49")
    settings = load_settings()
    assert (settings.stream_max_clients, settings.max_connections) == (49, 50)


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STATE_URL", "ENV", "MODEL_REGISTRY_URI", "N_LAGS", "MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.state_url == "memory://" and settings.env == "dev"
    assert settings.model_registry_uri == "file://./.data/registry"
    assert settings.n_lags == 12 and settings.max_body_bytes == 1024 * 1024


def test_process_with_bad_config_exits_with_message() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SNAPSHOT_EVERY": "zero"}
    done = subprocess.run(
        [sys.executable, "-c", "from shared.settings import get_settings; get_settings()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SNAPSHOT_EVERY" in done.stderr and "Traceback" not in done.stderr
