"""`make bench`: our functions against a bare functions-framework echo and chantilly 0.3.0,
side by side, one run.

Every server is a subprocess on loopback (ours and the echo under uvicorn, chantilly under
gunicorn from its own venv, bench/chantilly.py); the load comes from a separate client
process (bench.load), the same client and the same six features for every row. Besides
req/s it counts Valkey round trips per request (bench/roundtrips.py) and times cold start
(bench/coldstart.py). Missed aims are printed as "aim missed", never turned into a failing
exit status: this is a measurement, not a test.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from river.datasets import TrumpApproval

from bench import chantilly, coldstart, extras, inprocess, noisy, roundtrips, scale
from bench.load import Result
from bench.report import Aim, Row, aims, table
from bench.scenario import (
    LATENCY,
    LINREG,
    N_LEARN,
    ROUNDS,
    THROUGHPUT,
    WARM_MODELS,
    Job,
    Load,
    best_of,
    create_and_learn,
    drive,
    progress,
    start_servers,
    write_bodies,
)

IN_PROCESS_SECONDS = 1.0
BUSY = 0.9  # share of a core above which a process may be what limits a row
MEMORY, REDIS = "ff predict+train, memory://", "ff predict | train, redis://"
BARE_ECHO = "bare ASGI echo (uvicorn, no ff)"
# The ceiling of a served predict: River and a JSON codec in a function, none of the platform
FLOORS = {  # job key → (route, row label, server, body)
    "floor/predict": ("predict", "floor: River+orjson in ff", "floor", "x"),
    "floor/predict_learn": ("predict_learn", "floor: River+orjson in ff", "floor", "xy"),
    "floor-valkey/predict_learn": (
        "predict_learn",
        "floor + 1 redis-py RPUSH",
        "floor-valkey",
        "xy",
    ),
}
# Where the linreg model is served: row label → server name. The gateway row shows what the
# functions-framework layer costs; the aims are judged on the ff rows, served as deployed.
DEPLOYMENTS = {
    MEMORY: "ff-memory",
    REDIS: "ff-redis-predict",
    "gateway (no ff), memory://": "gateway",
}
ROUTES = {"predict": "x", "predict_learn": "xy"}  # route → request body file
CHANTILLY = "chantilly 0.3.0, gunicorn x2, redis://"
CHANTILLY_ROUTES = {"predict": "/api/predict", "learn": "/api/learn"}  # case → path
COLD_MODEL = "cold"  # created by the train process, first read by each cold predict process


def cpu_text(result: Result) -> str:
    parts = [f"{name} {share:.0%}" for name, share in result.server_cpu.items()]
    ours = result.client_cpu + sum(result.server_cpu.values())
    other = max(0.0, result.machine_cpu - ours)
    return ", ".join([*parts, f"client {result.client_cpu:.0%}", f"other {other:.0%}"])


def served_row(
    case: str, served: str, load: Load, result: Result, echo_rps: float | None = None
) -> Row:
    return Row(
        case=case,
        served=served,
        concurrency=load.concurrency,
        rate=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        cpu=cpu_text(result),
        client_cpu=result.client_cpu,
        vs_echo=None if echo_rps is None else result.rps / echo_rps,
    )


def river_row(case: str, timing: inprocess.Timing) -> Row:
    return Row(case, "in-process River", None, timing.calls_per_s, timing.p50_ms, timing.p99_ms)


@dataclass
class Measured:
    throughput: list[Row]
    latency: list[Row]
    checks: list[Aim]
    more: list[extras.Extra]
    noisy: list[Row]
    noisy_tally: dict[str, int]
    trips: dict[str, roundtrips.Counts]
    cold: coldstart.ColdStart


def measure(work: Path, stack: contextlib.ExitStack) -> Measured:
    samples: list[inprocess.Sample] = [(dict(x), float(y)) for x, y in TrumpApproval()]
    learned = samples[:N_LEARN]
    bodies = write_bodies(work, samples)
    rival_bodies = chantilly.write_bodies(work, samples)
    progress(f"chantilly's venv ({chantilly.VENV}; built once, from PyPI)")
    chantilly.ensure_venv()
    progress(f"starting servers (logs in {work})")
    servers, valkey = start_servers(work, stack)
    valkey_pid = int(valkey.client().info("server")["process_id"])

    progress(f"creating models, learning {N_LEARN} samples each")
    for name in ("ff-memory", "gateway", "ff-redis-train", "noisy"):
        create_and_learn(servers[name].url, "linreg", LINREG, learned)
    for name, steps in WARM_MODELS.items():
        create_and_learn(servers["ff-memory"].url, name, steps, learned)
    create_and_learn(servers["ff-redis-train"].url, COLD_MODEL, LINREG, learned)
    rival = servers["chantilly"]
    chantilly.create_and_learn(rival.url, learned)

    progress("timing River in-process")
    linreg = inprocess.trained_model(LINREG, learned)
    river_predict = inprocess.predict_timing(linreg, samples, IN_PROCESS_SECONDS)
    river_prequential = inprocess.prequential_timing(linreg, samples, IN_PROCESS_SECONDS)
    river_warm = {
        name: inprocess.predict_timing(
            inprocess.trained_model(steps, learned), samples, IN_PROCESS_SECONDS
        )
        for name, steps in WARM_MODELS.items()
    }

    echo = servers["echo"]
    jobs = [
        Job("echo", echo, "/", bodies["xy"], THROUGHPUT),
        Job("bare-echo", servers["bare-echo"], "/", bodies["xy"], THROUGHPUT),
    ]
    for label, name in DEPLOYMENTS.items():
        pids = {"valkey": valkey_pid} if label == REDIS else {}
        for route, body in ROUTES.items():
            path = f"/api/v1/models/linreg/{route}"
            jobs.append(
                Job(f"{label}/{route}", servers[name], path, bodies[body], THROUGHPUT, pids)
            )
    for key, (_, _, name, body) in FLOORS.items():
        pids = {"valkey": valkey_pid} if name == "floor-valkey" else {}
        jobs.append(Job(key, servers[name], "/", bodies[body], THROUGHPUT, pids))
    # chantilly's CPU is its two gunicorn workers' (the master only watches them) and Valkey's
    rival_pids = {f"worker{i}": pid for i, pid in enumerate(rival.children(), 1)}
    rival_pids["valkey"] = valkey_pid
    for case, path in CHANTILLY_ROUTES.items():
        body = rival_bodies[case]
        jobs.append(Job(f"chantilly/{case}", rival, path, body, THROUGHPUT, rival_pids))
    # The echo's latency is measured with predict's body, so both carry the same bytes.
    jobs.append(Job("echo-1", echo, "/", bodies["x"], LATENCY))
    for name in WARM_MODELS:
        path = f"/api/v1/models/{name}/predict"
        jobs.append(Job(f"warm/{name}", servers["ff-memory"], path, bodies["x"], LATENCY))
    best = best_of(jobs)

    echo_rps = best["echo"].rps
    throughput_rows = [
        served_row("echo {x,y}", "ff echo", THROUGHPUT, best["echo"], echo_rps),
        # the floor under the baseline: what functions-framework itself costs an echo
        served_row("echo {x,y}", BARE_ECHO, THROUGHPUT, best["bare-echo"], echo_rps),
    ]
    for route in ROUTES:
        throughput_rows += [
            served_row(
                f"{route} scaler>linreg", label, THROUGHPUT, best[f"{label}/{route}"], echo_rps
            )
            for label in DEPLOYMENTS
        ]
        throughput_rows += [
            served_row(f"{route} scaler>linreg", label, THROUGHPUT, best[key], echo_rps)
            for key, (of_route, label, _, _) in FLOORS.items()
            if of_route == route
        ]
    for case in CHANTILLY_ROUTES:
        result = best[f"chantilly/{case}"]
        case_name = f"chantilly {case} scaler>linreg"
        throughput_rows.append(served_row(case_name, CHANTILLY, THROUGHPUT, result, echo_rps))
    throughput_rows += [
        river_row("predict_one scaler>linreg", river_predict),
        river_row("predict_one+learn_one scaler>linreg", river_prequential),
    ]
    latency_rows = [served_row("echo {x}", "ff echo", LATENCY, best["echo-1"])]
    for name in WARM_MODELS:
        latency_rows += [
            served_row(f"predict {name} (warm)", MEMORY, LATENCY, best[f"warm/{name}"]),
            river_row(f"predict_one {name}", river_warm[name]),
        ]

    checks: list[Aim] = []
    # each throughput aim beside the floor doing the same (predict on Valkey: the floor has
    # no read to make, so its ratio is an upper bound there)
    floor_predict = best["floor/predict"].rps / echo_rps
    for label, short, target in ((MEMORY, "memory://", 0.8), (REDIS, "redis://", 0.6)):
        predict_ratio = best[f"{label}/predict"].rps / echo_rps
        name = f"predict / echo req/s, {short}"
        checks.append(Aim(name, predict_ratio, target, ">=", floor_predict))
    learn_floors = {MEMORY: "floor/predict_learn", REDIS: "floor-valkey/predict_learn"}
    for label, short in ((MEMORY, "memory://"), (REDIS, "redis://")):
        learn_ratio = best[f"{label}/predict_learn"].rps / echo_rps
        floor_ratio = best[learn_floors[label]].rps / echo_rps
        name = f"predict_learn / echo req/s, {short}"
        checks.append(Aim(name, learn_ratio, 0.6, ">=", floor_ratio))
    rival_learn = best["chantilly/learn"].rps
    versus = best[f"{REDIS}/predict_learn"].rps / rival_learn
    floor_versus = best[learn_floors[REDIS]].rps / rival_learn
    name = "predict_learn redis:// / chantilly learn req/s"
    checks.append(Aim(name, versus, 15, ">=", floor_versus))
    for name in WARM_MODELS:
        floor_ms = river_warm[name].p50_ms + best["echo-1"].p50_ms
        ratio = best[f"warm/{name}"].p50_ms / floor_ms
        checks.append(Aim(f"{name} warm predict p50 / (River p50 + echo p50)", ratio, 1.5, "<="))

    progress(f"counting Valkey round trips over {roundtrips.REQUESTS} requests each")
    client, predictor = valkey.client(), servers["ff-redis-predict"]
    trips = {
        f"{route}, {REDIS}": roundtrips.count(
            client, predictor.url, f"/api/v1/models/linreg/{route}", bodies[body]
        )
        for route, body in ROUTES.items()
    }
    for case, path in CHANTILLY_ROUTES.items():
        trips[f"chantilly {case}"] = roundtrips.count(
            client, rival.url, path, rival_bodies[case], headers=False
        )
    for route in ROUTES:
        value = trips[f"{route}, {REDIS}"].round_trips
        # at most one: no request can take fewer than one round trip, so a count under 1 is
        # only the 'others' correction's error (our own periodic reads in its quiet spell)
        checks.append(
            Aim(f"Valkey round trips per {route} (warm, one at a time)", round(value, 2), 1, "<=")
        )

    progress(f"cold start, median of {coldstart.RUNS}")
    x = learned[0][0]
    expected = inprocess.trained_model(LINREG, learned).predict_one(x)
    state = {"STATE_URL": valkey.connection_url}
    cold = coldstart.measure(COLD_MODEL, x, expected, state, work)
    checks.append(Aim("cold start / (River import + echo cold start)", cold.ratio, 1.5, "<="))

    progress("batch predict, activation, ingest")
    gateway = servers["gateway"]
    more = [
        *extras.batch_predict(gateway, learned),
        *extras.activation(gateway, learned),
        *extras.ingest(gateway, work),
    ]
    batch_rate = more[0].value
    checks.append(Aim("batch predict rows/s per process / 50,000", batch_rate / 50_000, 1, ">="))

    # tenant A (the bench tenant) on predict_learn, alone and while tenant B abuses the process
    job = Job(
        "noisy", servers["noisy"], "/api/v1/models/linreg/predict_learn", bodies["xy"], THROUGHPUT
    )
    quiet, loud, tally = noisy.neighbour(job, ROUNDS, drive)
    noisy_rows = [
        served_row("A predict_learn, quiet", "gateway, memory://", THROUGHPUT, quiet),
        served_row("A predict_learn, B abusing", "gateway, memory://", THROUGHPUT, loud),
    ]
    ratio = loud.rps / quiet.rps
    checks.append(Aim("noisy neighbour: A predict_learn req/s, noisy / quiet", ratio, 0.8, ">="))
    return Measured(throughput_rows, latency_rows, checks, more, noisy_rows, tally, trips, cold)


def notes(rows: list[Row]) -> list[str]:
    lines = [
        f"{os.cpu_count()} cores. One uvicorn (uvloop+httptools) per server; the load client is "
        "one process on raw asyncio streams + uvloop, HTTP/1.1 keep-alive, for echo and ours.",
        f"Each served row is the best of {ROUNDS} interleaved rounds. CPU: 100% = one core; "
        "'other' = load on the box that is not ours (e.g. a test run), which slows rows down.",
        "River calls/s = calls / time inside the calls (p50/p99 include ~0.1 us of timer).",
        "redis:// rows share the cores between client, predict server and Valkey.",
        "floor rows: River and orjson in a functions-framework function with none of the "
        "platform (bench/floor.py): no served predict can beat them, so they bound the ratios.",
        "chantilly's gunicorn sync workers close the connection after every response; the "
        "client then reconnects (as wrk does), so its rows include one TCP connect per request.",
    ]
    busy = [r for r in rows if r.client_cpu is not None and r.client_cpu >= BUSY]
    if busy:
        where = "; ".join(f"{r.case} [{r.served}]" for r in busy)
        lines.append(f"client near a full core on: {where}; those req/s are partly client-bound.")
    return lines


def trips_table(trips: dict[str, roundtrips.Counts]) -> str:
    width = max(len(case) for case in trips)
    head = f"{'case'.ljust(width)}  trips  others  commands per request (Lua's inner ones too)"
    lines = [head, "-" * len(head)]
    for case, counts in trips.items():
        numbers = f"{counts.round_trips:5.2f}  {counts.background:6.2f}"
        lines.append(f"{case.ljust(width)}  {numbers}  {roundtrips.text(counts)}")
    return "\n".join(lines)


def cold_table(cold: coldstart.ColdStart) -> str:
    lines = [
        ("predict function, redis://", f"{cold.predict_s * 1e3:,.0f} ms"),
        ("import river linear_model, preprocessing", f"{cold.river_import_s * 1e3:,.0f} ms"),
        ("echo function, to its first answer", f"{cold.echo_s * 1e3:,.0f} ms"),
        ("predict / (import + echo)", f"{cold.ratio:.2f}"),
    ]
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label.ljust(width)}  {value:>9}" for label, value in lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        with contextlib.ExitStack() as stack:
            measured = measure(Path(tmp), stack)
        # after the other servers have stopped: a cluster of its own, on a quieter box
        samples = [(dict(x), float(y)) for x, y in TrumpApproval()]
        scaled = scale.measure(Path(tmp), samples[:N_LEARN], Path(tmp) / "xy.jsonl")
    throughput_rows, latency_rows, checks = measured.throughput, measured.latency, measured.checks
    tp, lat = THROUGHPUT, LATENCY
    print(
        f"\nThroughput: {tp.concurrency} connections, {tp.duration:g} s after {tp.warmup:g} s "
        f"warm-up; every model learned {N_LEARN} TrumpApproval samples first"
    )
    print(table(throughput_rows))
    print(
        f"\nUnloaded latency: {lat.concurrency} connection, {lat.duration:g} s after "
        f"{lat.warmup:g} s warm-up"
    )
    print(table(latency_rows))
    print(
        f"\nValkey round trips per request: {roundtrips.REQUESTS} requests one at a time on a "
        "warm model; INFO total_reads_processed and commandstats before and after, less the "
        "snapshots' own calls and 'others' (other clients' reads, per request, over as long "
        "a quiet spell)"
    )
    print(trips_table(measured.trips))
    print(
        f"\nCold start, median of {coldstart.RUNS}: process spawn to the first correct predict "
        "on a model that exists in Valkey, each function served as deployed (FUNCTION_SOURCE)"
    )
    print(cold_table(measured.cold))
    print("\nLifecycle and ingest (gateway, memory://)")
    print(extras.table(measured.more))
    print(
        f"\nNoisy neighbour: tenant A's predict_learn ({tp.concurrency} connections) alone, then "
        "while tenant B sends big creates, learn batches, training jobs, idle and slow sockets"
    )
    print(table(measured.noisy))
    print("tenant B did: " + ", ".join(f"{k} x{v}" for k, v in measured.noisy_tally.items()))
    print(
        "\nScale-out on a Valkey Cluster (3 primaries + 3 replicas): predict_learn through N "
        f"instances, {scale.MODELS} models each always on one instance; ratio = req/s ÷ one "
        "instance's, and for STATE_MIN_REPLICAS p50 ÷ N=0's (the cost of WAIT per write)"
    )
    print(scale.table(scaled))
    print('\nAims (reported, never enforced: "aim missed" marks a ratio short of its goal)')
    print(aims(checks))
    print()
    for line in notes([*throughput_rows, *latency_rows, *measured.noisy]):
        print(f"note: {line}")


if __name__ == "__main__":
    main()
