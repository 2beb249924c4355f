"""The release job, end to end: `python -m publisher` run as the runner runs a Docker action."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import (
    Runner,
    assert_masked_first,
    assert_no_secrets,
    build_dists,
    pip_install,
)
from tests.servers import OidcRuntime, Warehouse


def test_trusted_publishing_uploads_every_distribution(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    for path in dists:
        stored = warehouse.files[path.name]
        assert stored.content == path.read_bytes()
        assert stored.form["sha256_digest"] == [hashlib.sha256(path.read_bytes()).hexdigest()]
        assert stored.form["name"] == ["example-pkg"]
        assert stored.form["version"] == ["1.0.0"]
    assert warehouse.count("POST", "/_/oidc/mint-token") == 1
    assert warehouse.count("POST", "/_/oidc/burn-token") == 1
    assert warehouse.minted[0].burned
    assert len(runtime.issued) == 2  # one OIDC token for the index, one for Sigstore
    assert_masked_first(run, *runtime.issued, warehouse.minted_tokens[0])
    assert_no_secrets(run, *runtime.issued, warehouse.minted_tokens[0])
    assert "uploaded example_pkg-1.0.0-py3-none-any.whl" in run.stdout


def test_secrets_are_masked_before_any_other_line(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "verbose": "true"})

    assert run.returncode == 0, run.log
    lines = run.stdout.splitlines()
    jwt_mask = lines.index(f"::add-mask::{runtime.issued[0]}")
    token_mask = lines.index(f"::add-mask::{warehouse.minted_tokens[0]}")
    # Nothing that came from the exchange is printed before the masks are registered.
    assert not any("Exchanged" in line for line in lines[:token_mask])
    assert jwt_mask < token_mask
    # The OIDC token for Sigstore too, before sigstore's own (verbose) lines.
    sigstore_mask = lines.index(f"::add-mask::{runtime.issued[1]}")
    assert not any("sigstore" in line.lower() for line in lines[:sigstore_mask])
    assert any("sigstore: " in line for line in lines[sigstore_mask:])
    assert_no_secrets(run, *runtime.issued, warehouse.minted_tokens[0])


def test_published_package_installs_with_pip(
    runner: Runner, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    run = runner({"repository-url": warehouse.upload_url})
    assert run.returncode == 0, run.log

    target = tmp_path / "installed"
    pip_install(f"{warehouse.url}/simple/", target, "example-pkg==1.0.0")
    assert (target / "example_pkg" / "__init__.py").read_text() == "VALUE = 42\n"


def test_password_path_makes_no_oidc_request(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.passwords["alice"] = "s3cret-password-value"
    run = runner(
        {
            "repository-url": warehouse.upload_url,
            "user": "alice",
            "password": "s3cret-password-value",
        }
    )

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert runtime.requests == []
    assert warehouse.count("GET", "/_/oidc/") == 0
    assert warehouse.count("POST", "/_/oidc/") == 0
    assert_masked_first(run, "s3cret-password-value")
    assert_no_secrets(run, "s3cret-password-value")


def test_deprecated_aliases_still_work(
    runner: Runner, warehouse: Warehouse, tmp_path: Path
) -> None:
    build_dists(runner.workspace / "out")
    run = runner(
        {
            "repository_url": warehouse.upload_url,
            "packages_dir": "out",
            "skip_existing": "true",
            "print_hash": "true",
            "verify_metadata": "false",
        }
    )

    assert run.returncode == 0, run.log
    assert len(warehouse.files) == 2
    for alias, name in (("repository_url", "repository-url"), ("packages_dir", "packages-dir")):
        assert f"Input `{alias}` is deprecated; rename it to `{name}`." in run.stdout
    assert "::warning title=Deprecated input::" in run.stdout


def test_stray_files_are_skipped_with_one_warning(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    dist = runner.workspace / "dist"
    (dist / "SHA256SUMS").write_text("abc  file\n")
    (dist / ".gitignore").write_text("*\n")
    (dist / "attestations").mkdir()
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    warnings = [line for line in run.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 1
    for name in (".gitignore", "SHA256SUMS", "attestations/"):
        assert name in warnings[0]
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
