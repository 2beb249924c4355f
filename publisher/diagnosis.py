"""Why the index refused to exchange this run's OIDC token, and the publisher that would match.

The index matches a trusted publisher on the token's claims: the repository and its owner (by
name and id), the workflow file taken from `job_workflow_ref`, and the environment if the
publisher names one. Showing those claims beside the errors turns "invalid-publisher" into the
exact settings to enter. The JWT itself is never shown; only its unverified claims are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from publisher.errors import TrustedPublishingError
from publisher.index import index_name, normalize, publishing_settings_url, web_url

CLAIMS_SHOWN = (
    "sub",
    "repository",
    "repository_owner",
    "repository_owner_id",
    "workflow_ref",
    "job_workflow_ref",
    "ref",
    "environment",
    "event_name",
)


def read_claims(oidc_token: str) -> dict[str, object]:
    """The token's claims, unverified: the index verifies, we only explain. (The payload read
    by hand: pyjwt would load cryptography, 20 ms, to read a base64 JSON object.)"""
    import base64
    import binascii
    import json

    parts = oidc_token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def explain_refusal(
    repository_url: str,
    status: int,
    body: Mapping[str, object],
    oidc_token: str,
    projects: Iterable[str],
    said: str = "",
) -> TrustedPublishingError:
    """`body` is the answer's JSON ({} if it had none); `said`, its text made readable."""
    name = index_name(repository_url)
    claims = read_claims(oidc_token)
    parts = [f"{name} refused to exchange this run's OIDC token (HTTP {status}):", ""]
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        for error in errors:
            if isinstance(error, dict):
                parts.append(f"- `{error.get('code', '?')}`: {error.get('description', '')}")
    elif body.get("message"):
        parts.append(f"- {body['message']}")
    else:
        parts.append("- the answer was not the JSON of a Warehouse index")
        if said:
            parts += ["", "```", said, "```"]

    hints = _hints(claims)
    if hints:
        parts += ["", *hints]
    if claims:
        parts += [
            "",
            "The claims of this run's token that the index matches on:",
            "",
            "| claim | value |",
            "| --- | --- |",
        ]
        parts += [
            f"| `{c}` | `{claims[c]}` |" for c in CLAIMS_SHOWN if claims.get(c) not in (None, "")
        ]
        parts += ["", *_matching_publisher(claims, repository_url, projects)]
    return TrustedPublishingError("\n".join(parts), title=f"{name} refused the OIDC token")


def _hints(claims: Mapping[str, object]) -> list[str]:
    hints = []
    workflow_ref = str(claims.get("workflow_ref", ""))
    job_workflow_ref = str(claims.get("job_workflow_ref", ""))
    if workflow_ref and job_workflow_ref and workflow_ref != job_workflow_ref:
        hints.append(
            f"**This job runs in a reusable workflow** (`{job_workflow_ref}`, called from "
            f"`{workflow_ref}`). PyPI does not support trusted publishing from reusable "
            "workflows. Move the job that runs this action into the calling workflow, and "
            "register that workflow's file as the trusted publisher."
        )
    if claims.get("event_name") == "pull_request_target":
        hints.append(
            "**This run was triggered by `pull_request_target`.** PyPI refuses tokens from this "
            "event, because it runs with the base repository's permissions on behalf of a pull "
            "request. Publish from `push` (of a tag) or `release` events instead."
        )
    return hints


def _matching_publisher(
    claims: Mapping[str, object], repository_url: str, projects: Iterable[str]
) -> list[str]:
    owner, _, repo = str(claims.get("repository", "")).partition("/")
    workflow_ref = str(claims.get("workflow_ref", ""))
    job_workflow_ref = str(claims.get("job_workflow_ref", "")) or workflow_ref
    if workflow_ref and workflow_ref != job_workflow_ref:
        # A reusable workflow never matches: the advice is the calling workflow's file.
        heading = (
            "A trusted publisher that matches this run, once the job is in the calling workflow:"
        )
        ref = workflow_ref
    else:
        heading = "A trusted publisher that matches this run:"
        ref = job_workflow_ref
    workflow = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    environment = str(claims.get("environment") or "")
    lines = [
        heading,
        "",
        f"- Owner: `{owner}`",
        f"- Repository name: `{repo}`",
        f"- Workflow name: `{workflow}`",
        f"- Environment name: `{environment}`"
        if environment
        else "- Environment name: (none: this job runs in no environment, so the publisher "
        "must not name one, or the job must set `environment:`)",
    ]
    web = web_url(repository_url)
    names = sorted({normalize(p) for p in projects})
    if web and names:
        lines.append("")
        lines += [f"Compare it with {publishing_settings_url(repository_url, n)}" for n in names]
        lines.append(
            f"For a project that does not exist yet, add a pending publisher at "
            f"{web}/manage/account/publishing/"
        )
    return lines
