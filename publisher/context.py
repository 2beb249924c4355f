"""Where this run happens: GitHub Actions (which repository, which event, a fork?) or a laptop.

Read once from the `GITHUB_*` variables and the event payload; nothing later looks at them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.settings import Settings

if TYPE_CHECKING:  # an input error is reported before the values of a publish are loaded
    from publisher.values import DryRun


@dataclass(frozen=True)
class OidcRequest:
    """Where the Actions runtime hands out the job's OIDC tokens, and the bearer token to ask
    with: the two variables a job with `id-token: write` gets."""

    url: str
    bearer: str = field(repr=False)


@dataclass(frozen=True)
class RunContext:
    in_actions: bool
    fork_reason: str  # why this run looks like it comes from a fork; empty if it does not
    oidc_request: OidcRequest | None  # None: no `id-token: write` (or not in Actions)
    output_path: Path | None
    summary_path: Path | None

    @property
    def oidc_available(self) -> bool:
        return self.oidc_request is not None


def load_context(environ: Mapping[str, str]) -> RunContext:
    event = _read_event(environ.get("GITHUB_EVENT_PATH", ""))
    return RunContext(
        in_actions=environ.get("GITHUB_ACTIONS") == "true",
        fork_reason=_fork_reason(
            environ.get("GITHUB_EVENT_NAME", ""), event, environ.get("GITHUB_REPOSITORY", "")
        ),
        oidc_request=_oidc_request(environ),
        output_path=_path(environ.get("GITHUB_OUTPUT", "")),
        summary_path=_path(environ.get("GITHUB_STEP_SUMMARY", "")),
    )


def decide_dry_run(settings: Settings, context: RunContext) -> DryRun:
    from publisher.values import DryRun

    if settings.dry_run == "true":
        return DryRun(True, "`dry-run` is `true`.")
    if settings.dry_run == "false" or not context.fork_reason:
        return DryRun(False, "")
    return DryRun(
        True,
        f"{context.fork_reason} Forks cannot publish (they get no OIDC token for the "
        "upstream project), so this is a dry run. Set `dry-run: false` to publish anyway.",
    )


def _fork_reason(event_name: str, event: Mapping[str, Any], repository: str) -> str:
    if event_name in ("pull_request", "pull_request_target"):
        pull = event.get("pull_request") or {}
        head = ((pull.get("head") or {}).get("repo") or {}).get("full_name", "")
        base = ((pull.get("base") or {}).get("repo") or {}).get("full_name", "") or repository
        if head and base and head != base:
            return f"This `{event_name}` run comes from the fork `{head}`."
    own = event.get("repository") or {}
    if own.get("fork") is True:
        return f"The repository `{own.get('full_name', repository)}` is a fork."
    return ""


def _oidc_request(environ: Mapping[str, str]) -> OidcRequest | None:
    url = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    bearer = environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    return OidcRequest(url, bearer) if url and bearer else None


def _read_event(path: str) -> Mapping[str, Any]:
    if not path:
        return {}
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return event if isinstance(event, dict) else {}


def _path(value: str) -> Path | None:
    return Path(value) if value else None
