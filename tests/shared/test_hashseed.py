"""Issue 17's trap: KMeans' answers depend on PYTHONHASHSEED, so every serving process runs
with the one fixed seed of shared/hashseed.py, re-executing itself at start-up if it must."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import httpx

from shared import hashseed
from tests.conftest import TENANT
from tests.river_reference import N_KMEANS, phishing, reference
from tests.servers import ROOT, AppProcess

KMEANS = {"name": "segments", "kind": "kmeans", "params": {"n_clusters": 3, "seed": 42}}
PROBE = "import os, sys; print(sys.flags.hash_randomization, os.environ['PYTHONHASHSEED'])"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_trap_is_real_without_the_fixed_seed() -> None:
    """Two processes with different seeds disagree on KMeans (the test below has teeth)."""
    one, two = reference("kmeans", "1"), reference("kmeans", "2")
    assert sum(a != b for a, b in zip(one, two, strict=True)) > N_KMEANS // 10


def test_a_process_with_another_seed_reexecutes_with_the_fixed_one() -> None:
    for inherited in ("random", "1", "12345"):
        done = _python(
            f"from shared import hashseed; hashseed.ensure_fixed(); {PROBE}",
            PYTHONHASHSEED=inherited,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0", hashseed.HASH_SEED]


def test_a_seed_that_cannot_be_fixed_refuses_to_start() -> None:
    # `-R` forces hash randomisation whatever PYTHONHASHSEED says: re-executing cannot help
    done = subprocess.run(
        [sys.executable, "-R", "-c", "from shared import hashseed; hashseed.ensure_fixed()"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "refusing to start: PYTHONHASHSEED must be 0" in done.stderr


def test_two_servers_with_different_inherited_seeds_agree_on_kmeans(
    app_factory: Callable[..., AppProcess],
) -> None:
    apps = [app_factory({"STATE_URL": "memory://", "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    samples = phishing(N_KMEANS)
    answers = []
    for index, app in enumerate(apps):
        name = f"segments-{index}"  # the fixture's apps share one registry
        with httpx.Client(base_url=app.url, headers=TENANT) as http:
            assert http.post("/api/v1/models", json={**KMEANS, "name": name}).status_code == 201
            url = f"/api/v1/models/{name}/predict_learn"
            answers.append([http.post(url, json={"x": x}).json()["cluster"] for x, _ in samples])
    assert answers[0] == answers[1] == reference("kmeans", hashseed.HASH_SEED)


def test_every_deployment_carries_the_fixed_seed() -> None:
    from deploy.dockerfile import parse
    from deploy.render import function_env, load_table

    assert parse()["env"]["PYTHONHASHSEED"] == hashseed.HASH_SEED
    table = load_table()
    for group in table["functions"]:
        assert function_env(table, group)["PYTHONHASHSEED"] == hashseed.HASH_SEED
