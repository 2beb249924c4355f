"""Every failure explained, retried where that is safe, and no secret ever shown.

Each scenario runs the action end to end, checks the exit code and the message, what the
servers received, and scans the log, the summary and the outputs for every secret.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.conftest import (
    ROOT,
    Run,
    Runner,
    assert_no_secrets,
    build_dists,
    rebuild_with_other_content,
)
from tests.servers import OidcRuntime, Publisher, Warehouse

VERBOSE = pytest.mark.parametrize("verbose", ["false", "true"])


def secrets_of(runtime: OidcRuntime, warehouse: Warehouse) -> list[str]:
    return [*runtime.issued, *warehouse.minted_tokens]


def assert_failed_cleanly(run: Run, title: str, runtime: OidcRuntime, warehouse: Warehouse) -> None:
    assert run.returncode == 1, run.log
    assert f"::error title={title}" in run.stdout
    assert title.replace("%3A", ":") in run.summary
    assert "Traceback" not in run.log
    assert all(m.burned for m in warehouse.minted), "a minted token was left alive"
    secrets = secrets_of(runtime, warehouse)
    if secrets:
        assert_no_secrets(run, *secrets)


@VERBOSE
def test_missing_id_token_permission(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose}, id_token=False)

    assert_failed_cleanly(run, "Missing permission%3A id-token%3A write", runtime, warehouse)
    assert "permissions:%0A      id-token: write" in run.stdout
    assert "```yaml" in run.summary
    assert warehouse.count("POST", "/") == 0
    assert runtime.requests == []


@VERBOSE
def test_publisher_mismatch_shows_claims_and_the_publisher_to_configure(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    warehouse.publishers = [Publisher(environment="release")]
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose})

    assert_failed_cleanly(run, "`127.0.0.1", runtime, warehouse)
    assert warehouse.count("POST", "/_/oidc/mint-token") == 1  # a 422 is not retried
    assert warehouse.count("POST", "/legacy/") == 0
    summary = run.summary
    assert "- `invalid-publisher`: valid token, but no corresponding publisher" in summary
    assert "| `sub` | `repo:octo-org/example-pkg:environment:pypi` |" in summary
    assert "| `repository_owner_id` | `4242` |" in summary
    assert "| `event_name` | `push` |" in summary
    assert "- Workflow name: `release.yml`" in summary
    assert "- Environment name: `pypi`" in summary
    assert_no_secrets(run, runtime.issued[0])


def test_reusable_workflow_is_explained(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    runtime.claims.job_workflow_ref = (
        "octo-org/shared-workflows/.github/workflows/publish.yml@refs/heads/main"
    )
    run = runner({"repository-url": warehouse.upload_url})

    assert_failed_cleanly(run, "`127.0.0.1", runtime, warehouse)
    assert "This job runs in a reusable workflow" in run.summary
    assert "PyPI does not support trusted publishing from reusable workflows" in run.summary
    assert warehouse.files == {}


def test_pull_request_target_is_explained(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    runtime.claims.event_name = "pull_request_target"
    run = runner({"repository-url": warehouse.upload_url}, event_name="pull_request_target")

    assert_failed_cleanly(run, "`127.0.0.1", runtime, warehouse)
    assert "triggered by `pull_request_target`" in run.summary
    assert warehouse.files == {}


@pytest.mark.parametrize(("status", "word"), [(403, "disabled"), (404, "not available")])
def test_index_without_trusted_publishing_points_to_password(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    dists: list[Path],
    status: int,
    word: str,
) -> None:
    warehouse.audience_status = status
    run = runner({"repository-url": warehouse.upload_url})

    assert_failed_cleanly(run, f"Trusted publishing is {word}", runtime, warehouse)
    assert "`password`" in run.summary
    assert runtime.requests == []
    assert warehouse.count("POST", "/") == 0


@VERBOSE
def test_transient_failures_everywhere_are_retried(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    warehouse.fail_next["/_/oidc/audience"] = ["drop", 502]
    runtime.fail_next = [503]
    warehouse.fail_next["/_/oidc/mint-token"] = ["maintenance"]
    warehouse.fail_next["/legacy/"] = [500, "maintenance"]
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert warehouse.count("GET", "/_/oidc/audience") == 3
    assert runtime.count("GET", "/token") == 3  # the index's token, retried once; Sigstore's
    assert warehouse.count("POST", "/_/oidc/mint-token") == 2
    assert len(warehouse.minted) == 1
    assert len(warehouse.upload_attempts) == 2  # the failed attempts never reached the handler
    assert "Asking the index for its audience: connection failed" in run.stdout
    assert "HTTP 502 Bad Gateway; retry 2 of 4" in run.stdout
    assert "Exchanging the OIDC token: HTTP 503" in run.stdout
    assert "Uploading example_pkg-1.0.0-py3-none-any.whl: HTTP 500" in run.stdout
    assert_no_secrets(run, *secrets_of(runtime, warehouse))


def test_persistent_5xx_gives_up_and_says_so(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.fail_next["/_/oidc/mint-token"] = [503] * 5
    run = runner({"repository-url": warehouse.upload_url})

    assert_failed_cleanly(run, "Exchanging the OIDC token failed%3A HTTP 503", runtime, warehouse)
    assert warehouse.count("POST", "/_/oidc/mint-token") == 5
    assert "failed 5 times" in run.summary
    assert warehouse.count("POST", "/legacy/") == 0


def test_an_index_that_asks_to_slow_down_is_retried(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.fail_next["/legacy/"] = [429]
    warehouse.fail_next["/_/oidc/mint-token"] = [429]
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert warehouse.count("POST", "/_/oidc/mint-token") == 2
    assert "HTTP 429" in run.log


def test_retried_upload_that_landed_counts_as_uploaded_once(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.identical_reupload_status = 400  # answer "already exists" even to the same file
    warehouse.fail_next["/legacy/"] = [("store-then", 504)]  # stored, but the answer is lost
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    wheel = "example_pkg-1.0.0-py3-none-any.whl"
    assert warehouse.upload_attempts.count(wheel) == 2
    assert len(warehouse.files) == 2
    assert {f["filename"]: f["status"] for f in run.files()}[wheel] == "uploaded"


def test_a_long_upload_gets_a_fresh_token_before_the_old_one_expires(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.token_lifetime = 60  # under the action's renewal margin
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert len(warehouse.files) == 2
    assert len(warehouse.minted) == 2
    assert len(runtime.issued) == 3  # each exchange used a fresh OIDC token; one for Sigstore
    assert all(m.burned for m in warehouse.minted)
    assert "about to expire" in run.stdout
    assert_no_secrets(run, *secrets_of(runtime, warehouse))


@VERBOSE
def test_partial_upload_lists_what_made_it(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    warehouse.fail_next["/legacy/"] = ["pass", 400]
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose})

    assert_failed_cleanly(run, "example_pkg-1.0.0.tar.gz refused (HTTP 400)", runtime, warehouse)
    assert "Uploaded: `example_pkg-1.0.0-py3-none-any.whl`." in run.summary
    assert "**Not uploaded**: `example_pkg-1.0.0.tar.gz`." in run.summary
    assert {f["filename"]: f["status"] for f in run.files()} == {
        "example_pkg-1.0.0-py3-none-any.whl": "uploaded",
        "example_pkg-1.0.0.tar.gz": "failed",
    }
    assert warehouse.count("POST", "/legacy/") == 2  # a 400 is not retried


@VERBOSE
def test_an_html_refusal_is_shown_as_text(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    """Warehouse answers upload errors with its message in the status line and an HTML page."""
    warehouse.too_large.add("example-pkg")
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose})

    title = "example_pkg-1.0.0-py3-none-any.whl refused (HTTP 400)"
    assert_failed_cleanly(run, title, runtime, warehouse)
    assert (
        "refused `example_pkg-1.0.0-py3-none-any.whl`: HTTP 400 File too large. "
        "Limit for project 'example-pkg' is 100 MB." in run.summary
    )
    assert "The index said:\n\n```\nThe server could not comply with the request" in run.summary
    assert "<" not in run.summary.split("The index said:")[1]
    assert "<h1>" not in run.log
    assert warehouse.files == {}


def test_a_failed_renewal_still_says_what_made_it(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.token_lifetime = 60  # renewed before the second file...
    warehouse.fail_next["/_/oidc/mint-token"] = ["pass", 503, 503, 503, 503, 503]  # ...which fails
    other = dists[0].parent / "zzz_pkg-1.0.0-py3-none-any.whl"
    other.write_bytes(dists[1].read_bytes())  # a third file, never attempted
    run = runner({"repository-url": warehouse.upload_url, "verify-metadata": "false"})

    assert_failed_cleanly(run, "Exchanging the OIDC token failed%3A HTTP 503", runtime, warehouse)
    assert "Uploaded: `example_pkg-1.0.0-py3-none-any.whl`." in run.summary
    assert (
        "**Not uploaded**: `example_pkg-1.0.0.tar.gz`, `zzz_pkg-1.0.0-py3-none-any.whl`."
        in run.summary
    )
    statuses = {f["filename"]: f["status"] for f in run.files()}
    assert statuses == {
        "example_pkg-1.0.0-py3-none-any.whl": "uploaded",
        "example_pkg-1.0.0.tar.gz": "failed",
        "zzz_pkg-1.0.0-py3-none-any.whl": "failed",
    }


@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_a_local_version_is_refused_for_pypi_before_any_request(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dry_run: str
) -> None:
    build_dists(runner.workspace / "dist", version="1.0.1.dev2+g0123abc")
    run = runner({"repository-url": "https://upload.pypi.org/legacy/", "dry-run": dry_run})

    assert_failed_cleanly(run, "PyPI would refuse these files", runtime, warehouse)
    assert "local part (`+g0123abc`)" in run.summary
    assert runtime.requests == []


def test_a_private_index_takes_a_local_version(runner: Runner, warehouse: Warehouse) -> None:
    build_dists(runner.workspace / "dist", version="1.0.1+internal.3")
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == [
        "example_pkg-1.0.1+internal.3-py3-none-any.whl",
        "example_pkg-1.0.1+internal.3.tar.gz",
    ]


def test_existing_file_without_skip_existing_names_it(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    published = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in dists}
    rebuilt = rebuild_with_other_content(dists)
    warehouse.requests.clear()
    run = runner({"repository-url": warehouse.upload_url})

    assert_failed_cleanly(
        run, "Other builds are already published under these names", runtime, warehouse
    )
    for path in rebuilt:  # each file named, with both digests, before anything was uploaded
        ours = hashlib.sha256(path.read_bytes()).hexdigest()
        assert (
            f"`{path.name}`: the index has sha256 `{published[path.name]}`, this build `{ours}`"
            in (run.summary)
        )
    assert "`skip-existing: true`" in run.summary
    assert warehouse.count("POST", "/legacy/") == 0
    assert warehouse.count("POST", "/_/oidc/mint-token") == 0  # not even a token minted


@pytest.mark.parametrize(
    ("inputs", "name", "value"),
    [
        ({"skip-existing": "yes"}, "skip-existing", "yes"),
        ({"verify_metadata": "0"}, "verify-metadata", "0"),
        ({"repository-url": "pypi.org"}, "repository-url", "pypi.org"),
        (
            {"repository-url": "http://pypi.example.com/legacy/"},
            "repository-url",
            "http://pypi.example.com/legacy/",
        ),
        ({"packages-dir": "build/out"}, "packages-dir", "build/out"),
        ({"user": "alice"}, "user", "alice"),
        ({"dry-run": "perhaps"}, "dry-run", "perhaps"),
    ],
)
def test_bad_input_is_named_before_any_request(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    dists: list[Path],
    inputs: dict[str, str],
    name: str,
    value: str,
) -> None:
    run = runner({"repository-url": warehouse.upload_url, **inputs})

    assert run.returncode == 1
    assert f"::error title=Invalid input `{name}`::Input `{name}` got `{value}`" in run.stdout
    assert warehouse.requests == []
    assert runtime.requests == []
    assert f"Invalid input `{name}`" in run.summary
    assert run.outputs["files"] == "[]"


def test_redirect_is_refused_with_both_urls(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.redirect["/legacy/"] = "https://elsewhere.example/legacy/"
    run = runner({"repository-url": warehouse.upload_url})

    assert_failed_cleanly(run, "Redirect refused", runtime, warehouse)
    assert (
        f"`{warehouse.upload_url}` answered with a redirect to `https://elsewhere.example/legacy/`"
        in run.summary
    )
    assert warehouse.files == {}


@VERBOSE
def test_wrong_password_fails_and_never_shows_it(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    warehouse.passwords["alice"] = "right-password"
    run = runner(
        {
            "repository-url": warehouse.upload_url,
            "user": "alice",
            "password": "wrong-password-123",
            "verbose": verbose,
        }
    )

    assert_failed_cleanly(run, "Credentials refused (HTTP 403)", runtime, warehouse)
    assert "check the `user` and `password` inputs" in run.summary
    assert warehouse.files == {}
    assert_no_secrets(run, "wrong-password-123")


def test_a_bug_keeps_its_traceback_redacted_and_the_token_is_still_revoked(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], tmp_path: Path
) -> None:
    """An exception that is not a PublishError, raised mid-upload with the token in its text."""
    bug = tmp_path / "bug"
    bug.mkdir()
    (bug / "sitecustomize.py").write_text(
        "import publisher.upload\n"
        "def broken(dists, credentials, *args, **kwargs):\n"
        "    raise RuntimeError('cannot happen with ' + credentials.password)\n"
        "publisher.upload.upload_distributions = broken\n"
    )
    run = runner(
        {"repository-url": warehouse.upload_url},
        extra_env={"PYTHONPATH": f"{bug}{os.pathsep}{ROOT}"},
    )

    assert run.returncode == 1
    assert "Traceback (most recent call last)" in run.stderr
    assert "RuntimeError: cannot happen with ***" in run.stderr
    assert "::error title=Internal error::This is a bug in the action" in run.stdout
    assert "Internal error" in run.summary
    assert "(`RuntimeError`)" in run.summary
    assert len(warehouse.minted) == 1
    assert warehouse.minted[0].burned
    assert warehouse.files == {}
    assert_no_secrets(run, *secrets_of(runtime, warehouse))
