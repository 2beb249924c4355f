"""Explaining a refused exchange: errors, claims, and the trusted publisher that would match."""

from __future__ import annotations

import jwt

from publisher.trusted_publishing import explain_refusal, read_claims

REFUSAL = {
    "message": "Token request failed",
    "errors": [
        {"code": "invalid-publisher", "description": "valid token, but no corresponding publisher"}
    ],
}


def token(**claims: object) -> str:
    base: dict[str, object] = {
        "sub": "repo:octo-org/example-pkg:ref:refs/tags/v1",
        "repository": "octo-org/example-pkg",
        "repository_owner": "octo-org",
        "repository_owner_id": "4242",
        "workflow_ref": "octo-org/example-pkg/.github/workflows/release.yml@refs/tags/v1",
        "job_workflow_ref": "octo-org/example-pkg/.github/workflows/release.yml@refs/tags/v1",
        "ref": "refs/tags/v1",
        "event_name": "push",
    }
    base.update(claims)
    return jwt.encode(base, "k" * 32, algorithm="HS256")


def test_pypi_links_to_the_projects_publishing_settings() -> None:
    error = explain_refusal(
        "https://upload.pypi.org/legacy/", 422, REFUSAL, token(), ["Example_Pkg", "other.pkg"]
    )

    assert error.title == "PyPI refused the OIDC token"
    assert "https://pypi.org/manage/project/example-pkg/settings/publishing/" in error.markdown
    assert "https://pypi.org/manage/project/other-pkg/settings/publishing/" in error.markdown
    assert "https://pypi.org/manage/account/publishing/" in error.markdown


def test_testpypi_links_to_testpypi() -> None:
    error = explain_refusal("https://test.pypi.org/legacy/", 422, REFUSAL, token(), ["example-pkg"])

    assert error.title == "TestPyPI refused the OIDC token"
    assert "https://test.pypi.org/manage/project/example-pkg/settings/publishing/" in error.markdown


def test_no_environment_says_the_publisher_must_not_name_one() -> None:
    error = explain_refusal("https://upload.pypi.org/legacy/", 422, REFUSAL, token(), [])

    assert "- Environment name: (none: this job runs in no environment" in error.markdown
    assert "| `environment` |" not in error.markdown


def test_reusable_workflow_advice_names_the_calling_workflow() -> None:
    called = "octo-org/shared/.github/workflows/pypi.yml@refs/heads/main"
    error = explain_refusal(
        "https://upload.pypi.org/legacy/", 422, REFUSAL, token(job_workflow_ref=called), []
    )

    assert "This job runs in a reusable workflow" in error.markdown
    assert "once the job is in the calling workflow" in error.markdown
    assert "- Workflow name: `release.yml`" in error.markdown


def test_an_answer_that_is_not_warehouse_json_is_still_explained() -> None:
    error = explain_refusal("https://pypi.example.com/legacy/", 502, {}, "not-a-jwt", [])

    assert "HTTP 502" in error.markdown
    assert "not the JSON of a Warehouse index" in error.markdown
    assert "| claim |" not in error.markdown


def test_what_a_non_warehouse_answer_said_is_quoted() -> None:
    error = explain_refusal(
        "https://pypi.example.com/legacy/", 403, {}, "not-a-jwt", [], said="Request blocked"
    )

    assert "not the JSON of a Warehouse index\n\n```\nRequest blocked\n```" in error.markdown


def test_claims_are_read_without_verification_and_garbage_is_empty() -> None:
    assert read_claims(token())["repository_owner_id"] == "4242"
    assert read_claims("garbage") == {}
