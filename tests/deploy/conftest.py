"""Copies of the deployment sources in tmp_path, for tests that edit one side alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """A tree with deploy/functions.yaml, infra/terraform and infra/k8s copied from the repo."""
    (tmp_path / "deploy").mkdir()
    shutil.copy(ROOT / "deploy" / "functions.yaml", tmp_path / "deploy" / "functions.yaml")
    shutil.copytree(
        ROOT / "infra" / "terraform",
        tmp_path / "infra" / "terraform",
        ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"),
    )
    shutil.copytree(ROOT / "infra" / "k8s", tmp_path / "infra" / "k8s")
    return tmp_path


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace `old` (which must occur) in a copied file."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))
