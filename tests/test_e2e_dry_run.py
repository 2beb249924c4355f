"""Dry runs: explicit, automatic in forks, and the same on a laptop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, Runner, assert_no_secrets, build_dists, rebuild_with_other_content
from tests.servers import OidcRuntime, Warehouse

FORK_PULL_REQUEST = {
    "pull_request": {
        "head": {"repo": {"full_name": "contributor/example-pkg", "fork": True}},
        "base": {"repo": {"full_name": "octo-org/example-pkg", "fork": False}},
    },
    "repository": {"full_name": "octo-org/example-pkg", "fork": False},
}
FORKED_REPOSITORY = {"repository": {"full_name": "contributor/example-pkg", "fork": True}}


def test_fork_pull_request_without_id_token_is_a_quiet_dry_run(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner(
        {"repository-url": warehouse.upload_url},
        event_name="pull_request",
        event=FORK_PULL_REQUEST,
        id_token=False,
    )

    assert run.returncode == 0, run.log
    assert warehouse.count("POST", "/_/oidc/") == 0
    assert warehouse.count("POST", "/legacy/") == 0
    assert runtime.requests == []
    assert "::notice title=Dry run%3A nothing will be uploaded::" in run.stdout
    assert "comes from the fork `contributor/example-pkg`" in run.stdout
    assert "`dry-run: false`" in run.stdout
    assert "exchange skipped" in run.stdout
    assert run.outputs["dry-run"] == "true"
    assert {f["status"] for f in run.files()} == {"dry-run"}
    assert "nothing was uploaded" in run.summary


def test_forked_repository_is_a_dry_run(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner(
        {"repository-url": warehouse.upload_url},
        event=FORKED_REPOSITORY,
        repository="contributor/example-pkg",
    )

    assert run.returncode == 0, run.log
    assert warehouse.count("POST", "/legacy/") == 0
    assert warehouse.files == {}
    assert "`contributor/example-pkg` is a fork" in run.stdout
    assert run.outputs["dry-run"] == "true"


def test_explicit_dry_run_proves_the_exchange_and_uploads_nothing(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 0, run.log
    assert warehouse.count("POST", "/_/oidc/mint-token") == 1
    assert warehouse.count("POST", "/_/oidc/burn-token") == 1
    assert warehouse.minted[0].burned
    assert warehouse.count("POST", "/legacy/") == 0
    assert "Trusted publishing works" in run.stdout
    assert "Trusted publishing works" in run.summary
    assert_no_secrets(run, runtime.issued[0], warehouse.minted_tokens[0])


def test_dry_run_with_a_publisher_that_does_not_match_fails(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    runtime.claims.workflow = "ci.yml"
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 1
    assert "invalid-publisher" in run.stdout
    assert warehouse.count("POST", "/legacy/") == 0
    assert run.outputs["dry-run"] == "true"


def test_dry_run_false_in_a_fork_publishes(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner(
        {"repository-url": warehouse.upload_url, "dry-run": "false"}, event=FORKED_REPOSITORY
    )

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert run.outputs["dry-run"] == "false"


def test_dry_run_over_broken_metadata_fails_before_any_request(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse
) -> None:
    build_dists(runner.workspace / "dist", content_type=None)
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 1
    assert "::error title=Metadata check failed::" in run.stdout
    assert warehouse.requests == []
    assert runtime.requests == []
    assert run.outputs["dry-run"] == "true"
    assert "Metadata check failed" in run.summary


def test_dry_run_reports_what_already_exists(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 0, run.log
    assert "identical file already on the index" in run.stdout
    assert all(f["url"].startswith(f"{warehouse.url}/files/") for f in run.files())


def test_dry_run_fails_when_a_different_build_is_already_published(
    runner: Runner, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    rebuild_with_other_content(dists)
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 1
    assert "other content" in run.stdout


def test_laptop_dry_run_with_flags(warehouse: Warehouse, tmp_path: Path) -> None:
    build_dists(tmp_path / "out")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_", "INPUT_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "publisher",
            "--dry-run",
            "--packages-dir",
            "out",
            "--repository-url",
            warehouse.upload_url,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "::" not in completed.stdout  # no workflow commands outside Actions
    assert "would upload example_pkg-1.0.0-py3-none-any.whl" in completed.stdout
    assert "would upload example_pkg-1.0.0.tar.gz" in completed.stdout
    assert "no OIDC token outside GitHub Actions" in completed.stdout
    assert "Dry run: nothing was uploaded" in completed.stdout
    assert warehouse.count("POST", "/") == 0
