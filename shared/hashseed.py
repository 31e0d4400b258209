"""One fixed PYTHONHASHSEED for every process that serves or replays models (issue 17).

River's KMeans (and any estimator that iterates a set of feature names) draws in the order
of a set, which follows the string hashes, which Python salts per process unless
PYTHONHASHSEED fixes them: two instances replaying the same learn log with different salts
answer different clusters. The salt is chosen when the interpreter starts, so setting
os.environ later changes nothing for the running process: a process started with another
seed re-executes itself (same pid, same argv) with HASH_SEED before serving anything.

HASH_SEED is the one place the value is set; the image (Dockerfile ENV), Cloud Run and
Knative (deploy/functions.yaml) and the test fixtures carry the same value so their processes
start right and skip the re-exec, and tests/deploy checks they agree with it.
"""

from __future__ import annotations

import os
import sys

HASH_SEED = "0"  # 0: hashing unsalted, identical in every process and every release
ENV_VAR = "PYTHONHASHSEED"
# Set on the re-exec: a second mismatch means the seed cannot be fixed (e.g. `python -R`)
_REEXEC_MARK = "ONLINE_ML_HASHSEED_REEXEC"


def is_fixed() -> bool:
    """Whether this interpreter started with HASH_SEED (read from how it actually started:
    with seed 0 hash randomisation is off, which os.environ cannot fake afterwards)."""
    return os.environ.get(ENV_VAR) == HASH_SEED and sys.flags.hash_randomization == 0


def ensure_fixed() -> None:
    """Return when the process runs with HASH_SEED; otherwise re-execute it with HASH_SEED
    (never returns), or, if that was tried already, exit with a clear error."""
    if is_fixed():
        os.environ.pop(_REEXEC_MARK, None)
        return
    if os.environ.get(_REEXEC_MARK):
        raise SystemExit(
            f"refusing to start: {ENV_VAR} must be {HASH_SEED} (shared/hashseed.py) so that "
            f"every instance replays models alike, and re-executing with it did not take "
            f"({ENV_VAR}={os.environ.get(ENV_VAR)!r}, "
            f"hash_randomization={sys.flags.hash_randomization})"
        )
    env = {**os.environ, ENV_VAR: HASH_SEED, _REEXEC_MARK: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
