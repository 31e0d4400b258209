"""deploy/functions.yaml is the one source of truth: the committed Terraform variables and
Knative manifests are exactly what `python -m deploy.render` makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy import render
from tests.deploy.conftest import ROOT, edit


def test_committed_files_are_the_render_of_the_table() -> None:
    assert render.stale() == [], "run `python -m deploy.render` and commit the result"


def test_check_cli_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["--check"]) == 0
    assert "match deploy/functions.yaml" in capsys.readouterr().out


def test_table_edited_alone_is_stale(deploy_copy: Path) -> None:
    edit(deploy_copy / "deploy" / "functions.yaml", "concurrency: 80", "concurrency: 81")
    stale = render.stale(deploy_copy)
    assert render.TFVARS in stale
    assert f"{render.K8S_FUNCTIONS}/predict.yaml" in stale


def test_generated_file_edited_alone_is_stale(deploy_copy: Path) -> None:
    edit(
        deploy_copy / "infra/k8s/functions/batch.yaml",
        "containerConcurrency: 10",
        "containerConcurrency: 11",
    )
    assert render.stale(deploy_copy) == [f"{render.K8S_FUNCTIONS}/batch.yaml"]


def test_unknown_generated_manifest_is_stale(deploy_copy: Path) -> None:
    (deploy_copy / "infra/k8s/functions/extra.yaml").write_text("kind: Service\n")
    assert render.stale(deploy_copy) == [f"{render.K8S_FUNCTIONS}/extra.yaml"]


def test_render_writes_what_check_expects(deploy_copy: Path) -> None:
    edit(
        deploy_copy / "deploy" / "functions.yaml",
        "memory: 4Gi\n    timeout_seconds: 300",
        "memory: 8Gi\n    timeout_seconds: 300",
    )
    assert render.write(deploy_copy)
    assert render.stale(deploy_copy) == []
    batch = yaml.safe_load((deploy_copy / "infra/k8s/functions/batch.yaml").read_text())
    limits = batch["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "8Gi"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("min_scale: 1\n    max_scale: 50", "min_scale: 60\n    max_scale: 50", "min_scale"),
        ("  LOG_LEVEL: INFO", "  PORT: '9000'", "env.PORT is reserved"),
        ('  N_LAGS: "12"', "  N_LAGS: 12", "env.N_LAGS must be a string"),
        ("    TRAIN_JOB_REGION: europe-west1\n", "", "k3d.platform_env"),
        ("  ingest:\n", "  ingestion:\n", "functions must list exactly"),
    ],
)
def test_table_is_validated(deploy_copy: Path, old: str, new: str, field: str) -> None:
    table = deploy_copy / "deploy" / "functions.yaml"
    edit(table, old, new)
    with pytest.raises(render.TableError, match=field.replace(".", r"\.")):
        render.load_table(table)


def test_every_function_group_on_disk_is_in_the_table() -> None:
    """A new functions/<group>/main.py must be deployed: it needs a row in the table."""
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    assert on_disk <= set(render.GROUPS), on_disk - set(render.GROUPS)
    assert tuple(render.load_table()["functions"]) == render.GROUPS


def test_same_image_env_and_scale_on_both_targets() -> None:
    """Spot check of the render itself (parity proves it on the committed files)."""
    table = render.load_table()
    tfvars = render.terraform_vars(table)
    service = render.knative_service(table, "predict")
    container = service["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(f"/{tfvars['image_name']}:{tfvars['image_tag']}")
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert literal == tfvars["functions"]["predict"]["env"]
    assert literal["FUNCTION_SOURCE"] == "functions/predict/main.py"
