"""`make deploy-check`: every offline check of the deployment sources, in one run.

    python -m deploy.check [--only step,step] [--tf-dir DIR] [--k8s-dir DIR]

Runs in .venv (python-hcl2, PyYAML) and calls the tools of .venv-deploy (requirements-deploy.txt:
checkov, kubernetes-validate, jsonschema) as subprocesses. Steps: render (generated files match
deploy/functions.yaml), parity (Terraform and Knative agree), dockerfile (image policy),
terraform-fmt, hcl (python-hcl2 parses every .tf), checkov-terraform, checkov-kubernetes
(infra/k8s plus the Knative pod templates scanned as Deployments), kubernetes-validate (core
objects, and each Knative pod template as a Pod), knative-schema (deploy/schemas), kustomize.
A step whose tool is absent is skipped with the reason printed; any failure exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from deploy import dockerfile, parity, render
from deploy.manifests import is_knative, k8s_documents, knative_as_deployment

ROOT = Path(__file__).resolve().parent.parent
TOOLS_VENV = ROOT / ".venv-deploy"


class StepFailed(Exception):
    pass


class StepSkipped(Exception):
    pass


def _tool(venv: Path, name: str) -> str | None:
    path = venv / "bin" / name
    return str(path) if path.exists() else None


def _run(
    cmd: list[str], env_extra: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    # A TF_CLI_CONFIG_FILE naming a missing file only makes terraform print a warning.
    if env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
        env.pop("TF_CLI_CONFIG_FILE")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kwargs)


# ---------------------------------------------------------------------------------------
# Steps: each returns a one-line summary or raises StepFailed / StepSkipped.
# ---------------------------------------------------------------------------------------


class Checks:
    def __init__(self, tf_dir: Path, k8s_dir: Path, tools_venv: Path) -> None:
        self.tf_dir = tf_dir
        self.k8s_dir = k8s_dir
        self.tools_venv = tools_venv

    def _tools_python(self) -> str:
        python = _tool(self.tools_venv, "python")
        if python is None:
            raise StepSkipped(f"{self.tools_venv} absent (`make deploy-check` creates it)")
        return python

    def render(self) -> str:
        problems = render.stale()
        if problems:
            raise StepFailed("stale (run `python -m deploy.render`): " + ", ".join(problems))
        return "generated files match deploy/functions.yaml"

    def parity(self) -> str:
        problems = parity.check(self.tf_dir, self.k8s_dir)
        if problems:
            raise StepFailed("\n".join(problems))
        return f"terraform and knative agree for {', '.join(parity.GROUPS)}"

    def dockerfile(self) -> str:
        image = dockerfile.parse()
        problems = []
        if not image["base"].startswith("python:3.11-slim"):
            problems.append(f"final stage FROM {image['base']}, not python:3.11-slim")
        user = (image["user"] or "root").split(":")[0]
        if user in ("root", "0") or (user.isdigit() and int(user) < 1000):
            problems.append(f"runs as {user!r}: needs a non-root USER")
        if "HEALTHCHECK" in image["keywords"]:
            problems.append("HEALTHCHECK: Cloud Run and Knative probe /health themselves")
        if image["cmd"] != ["python", "-m", "shared.server"] or image["entrypoint"]:
            problems.append(f"CMD {image['cmd']}: expected exec-form python -m shared.server")
        expected = {"PYTHONPATH": "/app", "FUNCTION_TARGET": "app", "PORT": "8080"}
        for key, value in expected.items():
            if image["env"].get(key) != value:
                problems.append(f"ENV {key}={image['env'].get(key)!r}, expected {value!r}")
        text = (ROOT / "Dockerfile").read_text()
        if "-r /tmp/requirements.txt" not in text:
            problems.append("the image must install the pinned requirements.txt")
        if problems:
            raise StepFailed("; ".join(problems))
        return f"{image['base']}, USER {image['user']}, CMD {' '.join(image['cmd'])}"

    def terraform_fmt(self) -> str:
        terraform = shutil.which("terraform")
        if terraform is None:
            raise StepSkipped("terraform binary not found on PATH")
        result = _run([terraform, "fmt", "-check", "-recursive", "-diff", str(self.tf_dir)])
        if result.returncode != 0:
            raise StepFailed(result.stdout + result.stderr)
        return "terraform fmt -check -recursive: formatted"

    def hcl(self) -> str:
        import hcl2

        files = sorted(self.tf_dir.rglob("*.tf"))
        if not files:
            raise StepFailed(f"no .tf files under {self.tf_dir}")
        for path in files:
            try:
                with path.open() as handle:
                    hcl2.load(handle)
            except Exception as exc:
                raise StepFailed(f"{path}: {exc}") from None
        return f"{len(files)} .tf files parse ({', '.join(p.name for p in files)})"

    def _checkov(self, directory: Path, framework: str, extra: list[str]) -> str:
        checkov = _tool(self.tools_venv, "checkov")
        if checkov is None:
            raise StepSkipped(f"checkov absent from {self.tools_venv} (make deploy-check)")
        cmd = [checkov, "-d", str(directory), "--framework", framework, "--skip-download"]
        cmd += ["--output", "json", "--compact", *extra]
        result = _run(cmd, cwd=directory)
        try:
            reports = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise StepFailed(f"checkov: {result.stdout[-2000:]}{result.stderr[-2000:]}") from None
        reports = reports if isinstance(reports, list) else [reports]
        passed = failed = 0
        failures: list[str] = []
        skips: dict[tuple[str, str], list[str]] = {}
        for report in reports:
            summary = report.get("summary", {})
            passed += summary.get("passed", 0)
            failed += summary.get("failed", 0)
            results = report.get("results", {})
            for check in results.get("failed_checks", []):
                failures.append(
                    f"FAILED {check['check_id']} {check['resource']} "
                    f"({check.get('file_path')}): {check.get('check_name')}"
                )
            for check in results.get("skipped_checks", []):
                reason = (check.get("check_result") or {}).get("suppress_comment") or ""
                if len(reason.strip()) < 20:  # every accepted exception states its reason
                    failures.append(
                        f"skip without a reason: {check['check_id']} {check['resource']}"
                    )
                skips.setdefault((check["check_id"], reason), []).append(check["resource"])
        skipped = sum(len(resources) for resources in skips.values())
        summary_line = f"passed {passed}, failed {failed}, skipped {skipped}"
        if failed or failures or result.returncode != 0:
            raise StepFailed("\n".join([summary_line, *failures, result.stderr[-2000:]]))
        lines = [summary_line]
        for (check_id, reason), resources in sorted(skips.items()):
            lines.append(f"skipped {check_id} on {len(resources)}: {', '.join(sorted(resources))}")
            lines.append(f"    reason: {reason}")
        return "\n".join(lines)

    def checkov_terraform(self) -> str:
        tfvars = sorted(self.tf_dir.glob("*.auto.tfvars.json"))
        extra = [a for p in tfvars for a in ("--var-file", str(p))]
        return self._checkov(self.tf_dir, "terraform", extra)

    def checkov_kubernetes(self) -> str:
        # Checkov reads a Knative Service as a core Service and would skip its pod template:
        # scan each template as the Deployment Knative makes of it, beside the other
        # manifests (NetworkPolicy coverage is a cross-resource check).
        with tempfile.TemporaryDirectory(prefix="deploy-check-k8s-") as tmp:
            out = Path(tmp)
            count = 0
            for index, doc in enumerate(k8s_documents(self.k8s_dir)):
                if is_knative(doc):
                    doc = knative_as_deployment(doc)
                    count += 1
                name = f"{index:03d}-{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
                (out / name).write_text(yaml.safe_dump(doc, sort_keys=False))
            if count == 0:
                raise StepFailed("no Knative Service found")
            return self._checkov(out, "kubernetes", [])

    def _k8s_validate(self, check: str) -> str:
        python = self._tools_python()
        cmd = [python, "-m", "deploy.k8s_validate", check, "--k8s-dir", str(self.k8s_dir)]
        result = _run(cmd, cwd=ROOT, env_extra={"PYTHONPATH": str(ROOT)})
        if result.returncode != 0:
            raise StepFailed(result.stdout + result.stderr[-3000:])
        return result.stdout.strip()

    def kubernetes_validate(self) -> str:
        return self._k8s_validate("kubernetes-validate")

    def knative_schema(self) -> str:
        return self._k8s_validate("knative-schema")

    def kustomize(self) -> str:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise StepSkipped("kubectl not found on PATH")
        result = _run([kubectl, "kustomize", str(self.k8s_dir)])
        if result.returncode != 0:
            raise StepFailed(result.stderr)
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        knative = [d for d in docs if is_knative(d)]
        if len(knative) != len(parity.GROUPS):
            raise StepFailed(f"kustomize rendered {len(knative)} Knative Services")
        # The optional push-ingestion overlays (they need the Knative Eventing CRDs).
        overlays = []
        for overlay in (self.k8s_dir / "eventing", self.k8s_dir / "eventing" / "kafka"):
            result = _run([kubectl, "kustomize", str(overlay)])
            if result.returncode != 0:
                raise StepFailed(f"{overlay}: {result.stderr}")
            kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
            overlays.append(f"{overlay.relative_to(self.k8s_dir)}: {len(kinds)}")
        return (
            f"kubectl kustomize renders {len(docs)} objects ({len(knative)} Knative Services); "
            f"overlays {', '.join(overlays)}"
        )


STEPS: dict[str, Callable[[Checks], str]] = {
    "render": Checks.render,
    "parity": Checks.parity,
    "dockerfile": Checks.dockerfile,
    "terraform-fmt": Checks.terraform_fmt,
    "hcl": Checks.hcl,
    "checkov-terraform": Checks.checkov_terraform,
    "checkov-kubernetes": Checks.checkov_kubernetes,
    "kubernetes-validate": Checks.kubernetes_validate,
    "knative-schema": Checks.knative_schema,
    "kustomize": Checks.kustomize,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated steps of: {', '.join(STEPS)}")
    parser.add_argument("--tf-dir", type=Path, default=parity.TERRAFORM_DIR)
    parser.add_argument("--k8s-dir", type=Path, default=parity.K8S_DIR)
    parser.add_argument("--tools-venv", type=Path, default=TOOLS_VENV)
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        parser.error(f"unknown steps {unknown}")
    checks = Checks(args.tf_dir.resolve(), args.k8s_dir.resolve(), args.tools_venv.resolve())
    failed, skipped = [], []
    for name in names:
        started = time.monotonic()
        try:
            detail, status = STEPS[name](checks), "ok"
        except StepSkipped as exc:
            detail, status = str(exc), "SKIPPED"
            skipped.append(name)
        except StepFailed as exc:
            detail, status = str(exc), "FAILED"
            failed.append(name)
        head, *rest = detail.splitlines() or [""]
        print(f"[{status:>7}] {name:<20} {head}  ({time.monotonic() - started:.1f}s)")
        for line in rest:
            print(f"          {line}")
    print(
        f"deploy-check: {len(names) - len(failed) - len(skipped)} ok, "
        f"{len(failed)} failed, {len(skipped)} skipped"
        + (f" (failed: {', '.join(failed)})" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
