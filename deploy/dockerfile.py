"""Read the final stage of the Dockerfile (ENV, WORKDIR, USER, CMD) so tests and deploy-check
can run and inspect the image's entrypoint without Docker."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
# PATH of the python:3.11-slim base image, which the Dockerfile's ENV PATH=...:$PATH extends.
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def parse(path: Path = DOCKERFILE) -> dict[str, Any]:
    """The final stage: base image, env (expanded as Docker does), workdir, user, cmd."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(path.read_text()):
        if keyword == "FROM":
            stages.append([])
        if not stages:
            raise ValueError("Dockerfile: an instruction before FROM")
        stages[-1].append((keyword, args))
    final = stages[-1]
    env: dict[str, str] = {}
    result: dict[str, Any] = {
        "base": final[0][1].split()[0],
        "stages": len(stages),
        "env": env,
        "workdir": "/",
        "user": None,
        "cmd": None,
        "entrypoint": None,
        "keywords": [k for k, _ in final],
    }
    for keyword, args in final:
        if keyword == "ENV":
            # Every pair of one ENV instruction sees the environment from before it (Docker).
            before = {"PATH": BASE_PATH, **env}

            def expand(match: re.Match[str], before: dict[str, str] = before) -> str:
                return before.get(match.group(1) or match.group(2), "")

            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                if not sep:
                    raise ValueError(f"Dockerfile: use ENV key=value, not {token!r}")
                env[key] = _VAR.sub(expand, value)
        elif keyword == "WORKDIR":
            result["workdir"] = args
        elif keyword == "USER":
            result["user"] = args
        elif keyword in ("CMD", "ENTRYPOINT"):
            try:
                result[keyword.lower()] = json.loads(args)
            except json.JSONDecodeError:
                raise ValueError(f"Dockerfile: {keyword} must be in exec (JSON) form") from None
    return result


def localize(image_env: dict[str, str], mapping: dict[str, str]) -> dict[str, str]:
    """The image's env with its paths moved onto this machine (e.g. /app -> the checkout)."""
    out = {}
    for key, value in image_env.items():
        parts = []
        for part in value.split(":"):
            for image_path, local_path in mapping.items():
                if part == image_path or part.startswith(image_path + "/"):
                    part = local_path + part[len(image_path) :]
                    break
            parts.append(part)
        out[key] = ":".join(parts)
    return out
