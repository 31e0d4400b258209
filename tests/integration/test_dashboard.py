"""The operator dashboard in a real browser: headless Chromium against a running gateway
(what `make run` serves) shows a model created through the API in every view.

Screenshots land in tests/artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from river import datasets

from tests.servers import AppProcess

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"{CHROMIUM} is absent: apt-get install -y chromium (.ci/run does)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HEADERS = {"X-Tenant-ID": "acme"}
TIMEOUT_MS = 10_000
SPEC = {"name": "trump", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


@pytest.fixture
def page() -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def shot(page: sync_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_every_view_shows_the_model(
    app_factory: Callable[..., AppProcess], page: sync_api.Page
) -> None:
    app = app_factory({"STATE_URL": "memory://", "ENV": "dev"})
    with httpx.Client(base_url=app.url, headers=HEADERS, timeout=30) as http:
        assert http.post("/api/v1/models", json=SPEC).status_code == 201
        for x, y in list(datasets.TrumpApproval())[:120]:
            assert http.post("/api/v1/models/trump/predict_learn", json={"x": x, "y": y}).is_success
        predicted = http.post("/api/v1/models/trump/predict", json={"x": x})
        request_id = predicted.headers["x-request-id"]

    page.goto(f"{app.url}/")
    page.fill("#tenant", "acme")
    page.click("#session button[type=submit]")
    overview = page.locator("#overview-table tbody")
    sync_api.expect(overview).to_contain_text("trump")
    sync_api.expect(overview).to_contain_text("regression")
    sync_api.expect(page.locator("#overview-totals")).to_contain_text(
        "1 model(s) · 121 predictions"
    )
    shot(page, "overview")

    page.click("nav a[data-view=predictions]")
    explorer = page.locator("#predictions-table tbody")
    sync_api.expect(explorer).to_contain_text(request_id)  # the audit row of that predict
    sync_api.expect(explorer).to_contain_text("predict_learn")
    shot(page, "predictions")

    page.click("nav a[data-view=models]")
    sync_api.expect(page.locator("#models-summary")).to_contain_text("trump: active version 1")
    page.click("#version-create")
    versions = page.locator("#versions-table tbody")
    sync_api.expect(versions.locator("tr")).to_have_count(2)
    sync_api.expect(page.locator("#status")).to_contain_text("version 2 created at seq 120")
    shot(page, "models")

    page.click("nav a[data-view=monitoring]")
    sync_api.expect(page.locator("#metrics-version")).to_contain_text("trump v1, 120 scored")
    sync_api.expect(page.locator("#metrics-table tbody")).to_contain_text("mae")
    sync_api.expect(page.locator("#drift-flag")).to_have_text("no drift")
    sync_api.expect(page.locator("#latency-table tbody")).to_contain_text("predict_learn")
    sync_api.expect(page.locator("#freshness")).to_contain_text("120")
    sync_api.expect(page.locator("#metrics-chart polyline")).to_have_count(1)
    shot(page, "monitoring")

    # credentials stay in the tab's sessionStorage, never in the address
    assert "acme" not in page.url
    assert page.evaluate("sessionStorage.getItem('tenant')") == "acme"

    # another tenant sees nothing of acme's
    page.click("nav a[data-view=overview]")
    page.fill("#tenant", "other")
    page.click("#session button[type=submit]")
    sync_api.expect(overview).to_contain_text("no models yet for this tenant")
    sync_api.expect(overview).not_to_contain_text("trump")
    sync_api.expect(page.locator("#status")).not_to_contain_text("trump")
    shot(page, "other-tenant")


def test_the_dashboard_sends_the_tenant_key(
    app_factory: Callable[..., AppProcess], page: sync_api.Page
) -> None:
    """With TENANT_AUTH=keys the page sends the key the operator typed as X-Tenant-Key (never
    in the URL), and says why when it is missing; the page itself needs no key."""
    app = app_factory({"STATE_URL": "memory://", "ENV": "dev", "TENANT_AUTH": "keys"})
    with httpx.Client(base_url=app.url, timeout=30) as http:
        key = http.post("/api/v1/admin/tenants/acme/keys").json()["key"]  # dev: admin open
        sent = {**HEADERS, "X-Tenant-Key": key}
        assert http.post("/api/v1/models", json=SPEC, headers=sent).status_code == 201

    page.goto(f"{app.url}/")
    page.fill("#tenant", "acme")
    page.click("#session button[type=submit]")
    sync_api.expect(page.locator("#status")).to_contain_text("401 missing_tenant_key")

    page.fill("#tenant-key", key)
    page.click("#session button[type=submit]")
    sync_api.expect(page.locator("#overview-table tbody")).to_contain_text("trump")
    sync_api.expect(page.locator("#status")).to_have_text("")
    shot(page, "tenant-key")
    assert key not in page.url
    assert page.evaluate("sessionStorage.getItem('tenantKey')") == key


def test_the_dashboard_is_live(
    app_factory: Callable[..., AppProcess], page: sync_api.Page, tmp_path: Path
) -> None:
    """Subscribed by EventSource: a stream of learns draws the live chart; a fresh page draws
    the model's history (actuals included, a delayed label's too) before any new event; the
    explorer shows a labelled prediction's actual and error; and a model created through the
    API appears in the overview without a reload (nor a poll: the stream is up)."""
    app = app_factory({"STATE_URL": "memory://", "ENV": "dev", "STREAM_PREDICTION_EVERY": "1"})
    with httpx.Client(base_url=app.url, headers=HEADERS, timeout=30) as http:
        assert http.post("/api/v1/models", json=SPEC).status_code == 201
        page.goto(f"{app.url}/#monitoring")
        page.fill("#tenant", "acme")
        page.click("#session button[type=submit]")
        sync_api.expect(page.locator("#stream-state")).to_have_class("live")
        for x, y in list(datasets.TrumpApproval())[:40]:
            assert http.post("/api/v1/models/trump/predict_learn", json={"x": x, "y": y}).is_success
        sync_api.expect(page.locator("#live-chart")).to_contain_text("40 points")
        drawn = page.locator("#live-chart polyline.prediction").get_attribute("points") or ""
        actual = page.locator("#live-chart polyline.actual").get_attribute("points") or ""
        assert len(drawn.split()) == 40 and len(actual.split()) == 40
        screenshot = tmp_path / "live.png"
        page.locator("#live-chart").screenshot(path=str(screenshot))
        assert screenshot.stat().st_size > 0
        shot(page, "live")

        # the explorer shows the actual and the error beside each predict_learn
        page.click("nav a[data-view=predictions]")
        first = page.locator("#predictions-table tbody tr").first
        sync_api.expect(first).to_contain_text("predict_learn")
        row = http.get("/api/v1/predictions/recent", params={"limit": 1}).json()["predictions"][0]
        assert row["prediction_error"] == abs(row["output"]["prediction"] - row["actual"])
        cells = first.locator("td")  # at, model, version, route, output, actual, error
        actual = cells.nth(5).inner_text()
        assert actual not in ("", "\N{EN DASH}") and float(actual) == pytest.approx(
            row["actual"], rel=1e-3
        )
        assert cells.nth(6).inner_text() not in ("", "\N{EN DASH}")

        # a delayed label: its prediction gets the actual and the error once it arrives
        x, y = list(datasets.TrumpApproval())[40]
        predicted = http.post("/api/v1/models/trump/predict", json={"x": x})
        request_id, answer = predicted.headers["x-request-id"], predicted.json()
        label = {"prediction_id": answer["prediction_id"], "y": y}
        assert http.post("/api/v1/models/trump/labels", json=label).status_code == 200

        # a fresh page draws the model's history (the timeline) before any new event: no
        # prediction is made from here on, so every point comes from the history
        browser = page.context.browser
        assert browser is not None
        fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
        fresh.set_default_timeout(TIMEOUT_MS)
        fresh.goto(f"{app.url}/#monitoring")
        fresh.fill("#tenant", "acme")
        fresh.click("#session button[type=submit]")
        chart = fresh.locator("#live-chart")
        sync_api.expect(chart).to_contain_text("41 points, 41 actuals")  # the label's too
        drawn = fresh.locator("#live-chart polyline.prediction").get_attribute("points") or ""
        actual = fresh.locator("#live-chart polyline.actual").get_attribute("points") or ""
        assert len(drawn.split()) == 41 and len(actual.split()) == 41
        history = tmp_path / "history.png"
        chart.screenshot(path=str(history))
        assert history.stat().st_size > 0
        shot(fresh, "history")

        # the explorer shows the labelled prediction's actual and error
        fresh.click("nav a[data-view=predictions]")
        labelled = fresh.locator("#predictions-table tbody tr", has_text=request_id)
        sync_api.expect(labelled).to_contain_text("predict")
        cells = labelled.locator("td")
        assert float(cells.nth(5).inner_text()) == pytest.approx(y, rel=1e-3)
        error = abs(answer["prediction"] - y)
        assert float(cells.nth(6).inner_text()) == pytest.approx(error, rel=1e-3)
        shot(fresh, "labelled")
        fresh.close()

        page.click("nav a[data-view=overview]")
        sync_api.expect(page.locator("#overview-table tbody")).to_contain_text("trump")
        created = {**SPEC, "name": "newcomer"}
        assert http.post("/api/v1/models", json=created).status_code == 201
        sync_api.expect(page.locator("#overview-table tbody")).to_contain_text("newcomer")
