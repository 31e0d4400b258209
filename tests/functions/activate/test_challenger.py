"""Champion / challenger: the shadow scores every predict_learn on the same sample, both
learn, /compare shows both; automatic promotion when the challenger wins by the margin."""

from __future__ import annotations

import itertools
import json
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from river import datasets, metrics, stats

from shared.runtime import reset_runtime
from shared.settings import reset_settings_cache

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
SAMPLES = list(itertools.islice(datasets.TrumpApproval(), 500))


async def learn(client: httpx.AsyncClient, rows: list) -> None:
    body = {"samples": [{"x": x} if y is None else {"x": x, "y": y} for x, y in rows]}
    assert (await client.post("/api/v1/models/m/learn", json=body)).status_code == 200


def artifact(tmp_path: Path, version: int) -> Any:  # a River pipeline
    return pickle.loads(
        (tmp_path / "registry/acme/m/versions" / str(version) / "model.pkl").read_bytes()
    )


async def test_shadow_scores_the_same_samples_and_never_answers(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await learn(client, SAMPLES[:100])
    assert (await client.post("/api/v1/models/m/versions")).json()["version"] == 2
    await learn(client, SAMPLES[100:200])
    assert (
        await client.put("/api/v1/models/m/aliases/challenger", json={"version": 2})
    ).status_code == 200

    champion, challenger = artifact(tmp_path, 1), artifact(tmp_path, 2)
    for x, y in SAMPLES[:200]:
        champion.learn_one(x, y)
    mae = {"champion": metrics.MAE(), "challenger": metrics.MAE()}
    for x, y in SAMPLES[200:300]:
        answer = (await client.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})).json()
        expected = champion.predict_one(x)
        assert answer["prediction"] == expected  # the champion answers
        mae["champion"].update(y, expected)
        mae["challenger"].update(y, challenger.predict_one(x))
        champion.learn_one(x, y)
        challenger.learn_one(x, y)  # the shadow keeps learning too

    compared = (await client.get("/api/v1/models/m/compare")).json()
    assert compared["champion"]["n"] == 100 and compared["challenger"]["version"] == 2
    assert compared["champion"]["mae"] == pytest.approx(mae["champion"].get(), rel=1e-12)
    assert compared["challenger"]["mae"] == pytest.approx(mae["challenger"].get(), rel=1e-12)
    assert compared["champion"]["version"] == 1

    # stopping the challenger removes the shadow; the champion is untouched
    assert (await client.delete("/api/v1/models/m/aliases/challenger")).status_code == 200
    assert (await client.get("/api/v1/models/m/compare")).json()["challenger"] is None
    probe = SAMPLES[400][0]
    assert (await client.post("/api/v1/models/m/predict", json={"x": probe})).json()[
        "prediction"
    ] == champion.predict_one(probe)


async def test_a_winning_challenger_is_promoted(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHALLENGER_PROMOTE_MARGIN", "0.2")
    monkeypatch.setenv("CHALLENGER_WINDOW", "30")
    reset_settings_cache()
    await reset_runtime()
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await learn(client, SAMPLES[:300])
    assert (await client.post("/api/v1/models/m/versions")).json()["version"] == 2
    assert (
        await client.post("/api/v1/models/m/versions/1/activate")
    ).status_code == 200  # a fresh champion
    await client.put("/api/v1/models/m/aliases/challenger", json={"version": 2})
    for x, y in SAMPLES[300:340]:
        assert (
            await client.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})
        ).status_code == 200

    listed = (await client.get("/api/v1/models/m/versions")).json()
    promoted = listed["versions"][-1]
    assert promoted["source"] == "challenger" and promoted["parent"] == 2
    assert listed["active"] == promoted["version"] and "challenger" not in listed["aliases"]
    assert promoted["metrics"]["challenger_error"] < 0.8 * promoted["metrics"]["champion_error"]
    events = [
        json.loads(line) for line in (tmp_path / "events" / "acme.jsonl").read_text().splitlines()
    ]
    assert any(
        e["type"] == "model.activated" and e["data"]["version"] == promoted["version"]
        for e in events
    )


async def test_a_challenger_of_the_champions_own_version_sees_every_learning_route(
    client: httpx.AsyncClient,
) -> None:
    """Fed by learn, predict_learn and the ingest fan-out, a challenger started from the
    champion's own version stays the champion: /compare shows the same n and metrics."""
    lags = {"name": "m", "steps": [{"kind": "linear_regression"}]}
    assert (await client.post("/api/v1/models", json=lags)).status_code == 201
    assert (
        await client.put("/api/v1/models/m/aliases/challenger", json={"version": 1})
    ).status_code == 200
    values = [float(y) for _, y in SAMPLES[:90]]
    windows = [({f"in_{i}": values[j - i] for i in (1, 2, 3)}, values[j]) for j in range(3, 60)]
    await learn(client, windows[:30])
    for x, y in windows[30:]:
        sent = await client.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})
        assert sent.status_code == 200
    subscribed = await client.put("/api/v1/series/s/models", json={"models": ["m"], "n_lags": 3})
    assert subscribed.status_code == 200
    for value in values[60:]:
        observed = await client.post("/api/v1/series/s/observations", json={"value": value})
        assert observed.status_code == 200

    compared = (await client.get("/api/v1/models/m/compare")).json()
    # 27 predict_learn, then 30 observations of which the last 27 fill a 3-lag window
    assert compared["champion"]["n"] == 27 + 27
    assert compared["challenger"] == compared["champion"]


DETECTOR = {
    "name": "m",
    "steps": [
        {"kind": "min_max_scaler"},
        {
            "kind": "quantile_filter",
            "params": {"q": 0.95, "anomaly_detector": {"kind": "half_space_trees"}},
        },
    ],
}
PHISHING = list(itertools.islice(datasets.Phishing(), 400))


class DetectorStats:
    """What /compare reports of one detector side, computed with River's own objects."""

    def __init__(self) -> None:
        self.quantiles = {f"score_p{round(q * 100)}": stats.Quantile(q) for q in (0.5, 0.9, 0.99)}
        self.mean, self.flagged = stats.Mean(), stats.Mean()
        self.roc = metrics.RollingROCAUC(window_size=1000)

    def update(self, score: float, flag: bool, y: bool) -> None:
        for quantile in self.quantiles.values():
            quantile.update(score)
        self.mean.update(score)
        self.flagged.update(1.0 if flag else 0.0)
        self.roc.update(y, score)

    def report(self) -> dict[str, float]:
        return {
            **{name: q.get() for name, q in self.quantiles.items()},
            "score_mean": self.mean.get(),
            "flagged_rate": self.flagged.get(),
            "roc_auc": self.roc.get(),
        }


async def test_detectors_are_compared_on_what_their_monitoring_reports(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A detector champion (fresh) and a challenger (version 2: after 200 samples) score the
    same labelled stream: /compare reports each side's score quantiles, mean, flagged rate and
    ROC AUC equal to River's in-process, on every route that feeds the shadow."""
    assert (await client.post("/api/v1/models", json=DETECTOR)).status_code == 201
    await learn(client, [(x, None) for x, _ in PHISHING[:200]])
    assert (await client.post("/api/v1/models/m/versions")).json()["version"] == 2
    assert (await client.post("/api/v1/models/m/versions/1/activate")).status_code == 200
    started = await client.put("/api/v1/models/m/aliases/challenger", json={"version": 2})
    assert started.status_code == 200
    empty = (await client.get("/api/v1/models/m/compare")).json()
    assert empty["champion"]["n"] == 0 and empty["task"] == "anomaly"

    champion, challenger = artifact(tmp_path, 1), artifact(tmp_path, 2)
    expected = {"champion": DetectorStats(), "challenger": DetectorStats()}
    # a plain learn feeds both sides (nothing to compare), then prequential with labels
    await learn(client, [(x, None) for x, _ in PHISHING[200:220]])
    for x, _ in PHISHING[200:220]:
        champion.learn_one(x)
        challenger.learn_one(x)
    for x, y in PHISHING[220:400]:
        sent = await client.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})
        answer = sent.json()
        for side, local in (("champion", champion), ("challenger", challenger)):
            score = local.score_one(x)
            flag = bool(local[-1].classify(score))
            if side == "champion":
                assert (answer["score"], answer["is_anomaly"]) == (score, flag)
            expected[side].update(score, flag, y)
            local.learn_one(x)

    compared = (await client.get("/api/v1/models/m/compare")).json()
    assert compared["task"] == "anomaly"
    assert compared["champion"] == {"version": 1, "n": 180, **expected["champion"].report()}
    assert compared["challenger"] == {"version": 2, "n": 180, **expected["challenger"].report()}
    assert compared["champion"]["roc_auc"] != compared["challenger"]["roc_auc"]

    # restarted, the challenger compares afresh
    await client.put("/api/v1/models/m/aliases/challenger", json={"version": 2})
    assert (await client.get("/api/v1/models/m/compare")).json()["challenger"]["n"] == 0


async def test_clusterers_are_compared_on_sizes_and_agreement(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    spec = {"name": "m", "kind": "kmeans", "params": {"n_clusters": 3, "seed": 42}}
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    await learn(client, [(x, None) for x, _ in PHISHING[:100]])
    assert (await client.post("/api/v1/models/m/versions")).json()["version"] == 2
    assert (await client.post("/api/v1/models/m/versions/1/activate")).status_code == 200
    await client.put("/api/v1/models/m/aliases/challenger", json={"version": 2})

    champion, challenger = artifact(tmp_path, 1), artifact(tmp_path, 2)
    sizes: dict[str, Counter[str]] = {"champion": Counter(), "challenger": Counter()}
    agreement = metrics.AdjustedRand()
    for x, _ in PHISHING[100:250]:
        answer = (await client.post("/api/v1/models/m/predict_learn", json={"x": x})).json()
        ours, theirs = champion.predict_one(x), challenger.predict_one(x)
        assert answer["cluster"] == ours
        sizes["champion"][str(ours)] += 1
        sizes["challenger"][str(theirs)] += 1
        agreement.update(ours, theirs)
        champion.learn_one(x)
        challenger.learn_one(x)

    compared = (await client.get("/api/v1/models/m/compare")).json()
    assert compared["adjusted_rand"] == agreement.get()
    for side in ("champion", "challenger"):
        assert compared[side]["n"] == 150
        assert compared[side]["cluster_sizes"] == dict(sorted(sizes[side].items()))
        assert compared[side]["largest_share"] == max(sizes[side].values()) / 150
