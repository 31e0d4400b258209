"""The deploy-check tools (checkov, kubernetes-validate, jsonschema) live in .venv-deploy
(`make deploy-check` creates it); without it these tests are skipped, saying so. The HCL parse,
terraform fmt and kustomize steps need only .venv and the binaries, when present."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest

from deploy import check
from tests.deploy.conftest import ROOT, edit

TOOLS = ROOT / ".venv-deploy"
needs_tools = pytest.mark.skipif(
    not (TOOLS / "bin" / "checkov").exists(),
    reason=".venv-deploy absent: run `make deploy-check` to install checkov, kubernetes-validate",
)


def _k8s_validate(step: str, k8s_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(TOOLS / "bin" / "python"),
            "-m",
            "deploy.k8s_validate",
            step,
            "--k8s-dir",
            str(k8s_dir),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_tf_file_parses() -> None:
    files = sorted((ROOT / "infra" / "terraform").rglob("*.tf"))
    assert len(files) >= 8
    for path in files:
        with path.open() as handle:
            assert hcl2.load(handle), path


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH")
def test_terraform_fmt() -> None:
    checks = check.Checks(ROOT / "infra/terraform", ROOT / "infra/k8s", TOOLS)
    assert "formatted" in checks.terraform_fmt()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kustomize_renders() -> None:
    checks = check.Checks(ROOT / "infra/terraform", ROOT / "infra/k8s", TOOLS)
    assert "6 Knative Services" in checks.kustomize()


@needs_tools
def test_deploy_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([]) == 0, capsys.readouterr().out


@needs_tools
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "True was expected"),
        ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "False was expected"),
        ("containerConcurrency: 80", "containerConcurency: 80", "containerConcurency"),
        (
            "autoscaling.knative.dev/min-scale: '1'",
            "autoscaling.knative.dev/min-scale: one",
            "does not match",
        ),
    ],
)
def test_knative_schema_rejects(deploy_copy: Path, old: str, new: str, expected: str) -> None:
    k8s = deploy_copy / "infra" / "k8s"
    assert _k8s_validate("knative-schema", k8s).returncode == 0
    edit(k8s / "functions" / "predict.yaml", old, new)
    result = _k8s_validate("knative-schema", k8s)
    assert result.returncode == 1 and expected in result.stdout, result.stdout


@needs_tools
def test_kubernetes_validate_rejects(deploy_copy: Path) -> None:
    k8s = deploy_copy / "infra" / "k8s"
    edit(k8s / "valkey.yaml", "containerPort: 6379", "containerPort: '6379'")
    result = _k8s_validate("kubernetes-validate", k8s)
    assert result.returncode == 1 and "Deployment/valkey" in result.stdout, result.stdout


@needs_tools
def test_checkov_failure_fails_the_step(deploy_copy: Path) -> None:
    k8s = deploy_copy / "infra" / "k8s"
    edit(k8s / "nats.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
    checks = check.Checks(deploy_copy / "infra/terraform", k8s, TOOLS)
    with pytest.raises(check.StepFailed, match="CKV_K8S_20"):
        checks.checkov_kubernetes()
