"""`silobridge app hash`: a release's bundle hash is reproducible and names its exact code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from silobridge.app_bundle import bundle_of
from silobridge.cli.main import app

REPO = Path(__file__).resolve().parents[3]


def _copy_release(to: Path) -> Path:
    """The files a release ships, copied with fresh timestamps into another folder."""
    to.mkdir()
    for name in ("pyproject.toml", ".gitignore"):
        shutil.copy(REPO / name, to / name)
    for package in ("clients", "server", "vocab", "protos"):
        shutil.copytree(REPO / package, to / package, ignore=shutil.ignore_patterns("__pycache__"))
    return to


def test_the_same_release_gives_the_same_hash_anywhere(tmp_path: Path) -> None:
    here = bundle_of(REPO)
    copy = bundle_of(_copy_release(tmp_path / "elsewhere"))
    assert copy.sha256 == here.sha256 and len(here.sha256) == 64
    assert "clients/release.py" in here.files and "clients/secure_noise.py" in here.files


def test_one_changed_byte_of_node_code_changes_the_hash(tmp_path: Path) -> None:
    release = _copy_release(tmp_path / "release")
    before = bundle_of(release).sha256
    noise = release / "clients" / "secure_noise.py"
    noise.write_text(noise.read_text().replace("/ 2.0 * std", "/ 2.0 * 0.0 * std"))
    assert bundle_of(release).sha256 != before


def test_the_cli_prints_the_hash_and_refuses_a_folder_without_an_app(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["app", "hash", str(REPO), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sha256"] == bundle_of(REPO).sha256
    refused = runner.invoke(app, ["app", "hash", str(tmp_path)])
    assert refused.exit_code == 2
    assert "no pyproject.toml" in refused.output and "Traceback" not in refused.output
