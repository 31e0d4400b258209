"""Cloud Run Job entry point: `python -m shared.training run` (JOB_TENANT and JOB_ID come
from the execution's environment overrides) runs one queued training job to its end."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


async def _run(tenant: str, job_id: str) -> int:
    from shared.runtime import current_runtime, reset_runtime

    runtime = current_runtime()
    try:
        job = await runtime.jobs.run(tenant, job_id, own_process=True)
    finally:
        await runtime.events.flush()
        await reset_runtime()
    print(f"job {job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""))
    return 0 if job["status"] == "succeeded" else 1


def main() -> None:
    from shared import hashseed

    hashseed.ensure_fixed()  # it trains models other instances replay: one hash seed
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--tenant", default=os.environ.get("JOB_TENANT"))
    parser.add_argument("--job-id", default=os.environ.get("JOB_ID"))
    args = parser.parse_args()
    if not args.tenant or not args.job_id:
        parser.error("JOB_TENANT and JOB_ID (or --tenant / --job-id) are required")
    sys.exit(asyncio.run(_run(args.tenant, args.job_id)))


if __name__ == "__main__":
    main()
