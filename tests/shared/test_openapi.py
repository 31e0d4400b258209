"""OpenAPI is generated from the pydantic models and covers every API route."""

from __future__ import annotations

import httpx

from functions.gateway import routes


async def test_every_api_route_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for route in routes:
        for method in route.methods - {"HEAD"}:
            operation = document["paths"][route.path][method.lower()]
            assert operation["summary"] and operation["tags"]
            if route.path == "/" or route.path.startswith(("/static", "/ui/")):
                continue  # the dashboard page itself needs no tenant (architecture.md §3)
            if route.path == "/v2" or route.path.startswith("/v2/health/"):
                continue  # OIP's server routes need no tenant; its model routes do
            assert any(p["name"] == "X-Tenant-ID" for p in operation["parameters"]), route.path
    create = document["paths"]["/api/v1/models"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ModelSpec"
    )
    assert "201" in create["responses"]
    assert "steps" in document["components"]["schemas"]["ModelSpec"]["properties"]
    infer = document["paths"]["/v2/models/{model}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OipInferRequest"
    )
    error = infer["responses"]["default"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/OipError")  # OIP's {"error": "<message>"}, not our envelope
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/api/v1/models/{model}/predict_learn" in docs.text
