"""RATE_LIMIT_PER_MINUTE is one budget per tenant shared by every instance (one Lua call on
Valkey per request): two app processes, requests alternating between them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from tests.servers import AppProcess

# 6 per minute: a token comes back every 10 s, far longer than these requests take, so the
# counts below are exact without timing anything
LIMIT = 6
SENT = 10


def test_two_processes_share_each_tenants_budget(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    env = {"STATE_URL": redis_url, "RATE_LIMIT_PER_MINUTE": str(LIMIT)}
    apps = [app_factory(env), app_factory(env)]
    with httpx.Client(timeout=10) as http:
        for app in apps:  # build each runtime first
            assert http.get(f"{app.url}/ready").status_code == 200
        answers = [
            http.get(f"{apps[i % 2].url}/api/v1/models", headers={"X-Tenant-ID": "a"})
            for i in range(SENT)
        ]
        assert Counter(r.status_code for r in answers) == {200: LIMIT, 429: SENT - LIMIT}
        assert [r.status_code for r in answers[:LIMIT]] == [200] * LIMIT
        per_app = Counter(i % 2 for i, r in enumerate(answers) if r.status_code == 200)
        assert per_app == {0: LIMIT // 2, 1: LIMIT // 2}  # both instances drew on one budget
        for refused in answers[LIMIT:]:
            error = refused.json()["error"]
            assert error["code"] == "rate_limited"
            assert error["request_id"] == refused.headers["x-request-id"]
            assert 1 <= int(refused.headers["retry-after"]) <= 60 // LIMIT
        # tenant b has its own budget, on either instance
        other = [
            http.get(f"{apps[i % 2].url}/api/v1/models", headers={"X-Tenant-ID": "b"})
            for i in range(LIMIT + 1)
        ]
        assert [r.status_code for r in other] == [200] * LIMIT + [429]
        # ops routes are never limited
        assert all(http.get(f"{app.url}/health").status_code == 200 for app in apps)
