"""Trusted publishing: the job's OIDC token exchanged at the index for short-lived upload tokens.

`TrustedPublishing` is the one object the run uses, as a context manager: it asks for both OIDC
tokens (the index's audience and Sigstore's), mints, renews for long uploads, proves the exchange
in a dry run, explains a refusal, and revokes every token it minted on the way out (quickly
when the job is being stopped). Everything that is about GitHub's OIDC tokens and Warehouse's
exchange lives here, so another provider would touch this module only.

    GET  <index>/_/oidc/audience    -> the audience the index wants in the OIDC token
    GET  $ACTIONS_ID_TOKEN_REQUEST_URL&audience=...  (ours on GitHub)  -> the job's JWT
    POST <index>/_/oidc/mint-token  {"token": JWT}            -> an upload token, 15 minutes
    POST <index>/_/oidc/burn-token  {"token": upload token}   -> revoked once we are done

Both the JWT and the minted token are credentials: `mask` registers each the moment it exists,
before anything else is printed. Neither is trusted to be what it should: a JWT that is not three
base64url parts, or an upload token that is not one line of printable ASCII, is an error that
never shows it (masked all the same, every line of it); an `expires` that is not a sane time is
taken to be the 15 minutes Warehouse gives.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from types import TracebackType

import requests

from publisher.context import OidcRequest
from publisher.errors import PublishError, TrustedPublishingError
from publisher.http import (
    RetryPolicy,
    Transient,
    answer_json,
    answer_text,
    raise_if_transient,
    request,
    with_retries,
)
from publisher.index import (
    index_name,
    normalize,
    oidc_base,
    publishing_settings_url,
    web_url,
)
from publisher.shared import Shared
from publisher.values import Credentials

PERMISSION_SNIPPET = """\
```yaml
jobs:
  publish:
    runs-on: ubuntu-latest
    environment: pypi   # if your trusted publisher names one
    permissions:
      id-token: write   # this job may ask GitHub for an OIDC token
```"""


SIGSTORE_AUDIENCE = "sigstore"
QUICK_TIMEOUT = (1.0, 1.0)  # connect, read: revoking a token while the job is being stopped
LIFETIME = 15 * 60.0  # of a minted token, where the index does not say (or says nonsense)
LONGEST_LIFETIME = 24 * 3600.0  # an `expires` further away than this is nonsense
MAX_TOKEN_LENGTH = 4096  # a Warehouse upload token is about 200 characters
MAX_JWT_LENGTH = 16384  # a GitHub OIDC token is 1 to 2 kB
JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
UPLOAD_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space


@dataclass(frozen=True)
class UploadToken:
    value: str
    expires: float  # unix time


@dataclass(frozen=True)
class Exchange:
    """Where and how to exchange: plain values shared by the steps below."""

    session: requests.Session
    repository_url: str
    policy: RetryPolicy
    log: Callable[[str], None]
    mask: Callable[[str], None]
    oidc_request: OidcRequest | None = None  # the Actions runtime's, where the job has one

    @property
    def base(self) -> str:
        return oidc_base(self.repository_url)


def fetch_audience(exchange: Exchange) -> str:
    url = f"{exchange.base}/_/oidc/audience"
    response = request(exchange, "GET", url, what="Asking the index for its audience")
    name = index_name(exchange.repository_url)
    if response.status_code in (403, 404):
        state = "is disabled" if response.status_code == 403 else "is not available"
        raise TrustedPublishingError(
            f"Trusted publishing {state} on {name} (`GET {url}` answered "
            f"HTTP {response.status_code}).\n\nUse an API token instead: store it as a secret "
            "and pass it as the `password` input (`password: ${{ secrets.PYPI_API_TOKEN }}`).",
            title=f"Trusted publishing {state} on this index",
        )
    audience = _json(response).get("audience") if response.status_code == 200 else None
    if not isinstance(audience, str) or not audience:
        raise TrustedPublishingError(
            f"`GET {url}` answered HTTP {response.status_code} without an audience; "
            "is `repository-url` the upload URL of a Warehouse-based index?"
        )
    return audience


def fetch_oidc_token(exchange: Exchange, audience: str) -> str | None:
    """The job's OIDC token for `audience`; None where no CI can give one (a laptop).

    On GitHub Actions the request is ours, made with the exchange's session: `id` makes it with
    a bare urllib3 request that ignores `HTTPS_PROXY`, and a runner behind a proxy can reach
    the Actions runtime only through it. Elsewhere (no request variables: a missing permission;
    another CI; a laptop) `id` tells, as before.
    """
    runtime = exchange.oidc_request
    token = with_retries(
        partial(_ask_github, exchange, runtime, audience)
        if runtime is not None
        else partial(_ask_id, audience),
        url="ACTIONS_ID_TOKEN_REQUEST_URL",
        what="Requesting the OIDC token",
        policy=exchange.policy,
        log=exchange.log,
    )
    if token:
        exchange.mask(token)
        if len(token) > MAX_JWT_LENGTH or not JWT.fullmatch(token):
            raise TrustedPublishingError(
                NOT_A_JWT.format(MAX_JWT_LENGTH, len(token)), title=("The OIDC token is not a JWT")
            )
    return token


NOT_A_JWT = (
    "The Actions runtime answered with an OIDC token that is not a JWT (three base64url parts, "
    "at most {} characters; it has {}), so it is not shown and not sent to the index. "
    "Something between this job and the Actions runtime changed it: re-run the job, and report "
    "it if it happens again."
)


def _ask_github(exchange: Exchange, runtime: OidcRequest, audience: str, _number: int) -> str:
    """One request to the Actions runtime (`Transient` for what deserves another)."""
    from urllib.parse import quote

    response = exchange.session.get(
        f"{runtime.url}&audience={quote(audience, safe='')}",  # the URL has a query already
        headers={"Authorization": f"bearer {runtime.bearer}"},
        allow_redirects=False,  # the bearer token goes to the runtime only
    )
    raise_if_transient(response)
    if response.status_code != 200:
        said = answer_text(response, limit=500)
        raise TrustedPublishingError(
            "The Actions runtime refused the OIDC token request: "
            f"HTTP {response.status_code} {response.reason}" + (f": {said}" if said else "")
        )
    value = _json(response).get("value")
    if not isinstance(value, str) or not value:
        raise Transient("the Actions runtime answered without a token")
    return value


def _ask_id(audience: str, _number: int) -> str | None:
    """Through `id`, where the runtime's variables are absent: it says why (a missing
    permission), or finds another CI's token, or None."""
    import id as oidc_id

    try:
        return oidc_id.detect_credential(audience)
    except oidc_id.GitHubOidcPermissionCredentialError as e:
        raise missing_permission() from e
    except oidc_id.AmbientCredentialError as e:
        status = re.search(r"code=(\d+)", str(e))
        if status is None or int(status.group(1)) >= 500:
            raise Transient(str(e)) from e
        raise TrustedPublishingError(
            f"The Actions runtime refused the OIDC token request: {e}"
        ) from e


def missing_permission() -> TrustedPublishingError:
    return TrustedPublishingError(
        "This job may not ask GitHub for an OIDC token, so there is nothing to exchange for an "
        "upload token. Give the job the `id-token: write` permission:\n\n"
        + PERMISSION_SNIPPET
        + "\n\nPull requests from forks never get this permission: publish from the upstream "
        "repository (or use `dry-run: true` to check a fork's build).",
        title="Missing permission: id-token: write",
    )


def mint_upload_token(exchange: Exchange, oidc_token: str, projects: Iterable[str]) -> UploadToken:
    url = f"{exchange.base}/_/oidc/mint-token"
    response = request(
        exchange, "POST", url, what="Exchanging the OIDC token", json={"token": oidc_token}
    )
    body = _json(response)
    token = body.get("token")
    if response.status_code == 200 and isinstance(token, str) and token:
        exchange.mask(token)  # before anything else: it may be a real token with a flaw
        _check_upload_token(exchange, token)
        return UploadToken(token, _expiry(body.get("expires")))
    raise explain_refusal(
        exchange.repository_url,
        response.status_code,
        body,
        oidc_token,
        projects,
        said="" if body else answer_text(response, limit=500),
    )


def _check_upload_token(exchange: Exchange, token: str) -> None:
    """An upload token is one line of printable ASCII (Warehouse's: `pypi-` and base64url).
    Anything else is not used, for it would go into an `Authorization` header, nor shown."""
    if len(token) <= MAX_TOKEN_LENGTH and UPLOAD_TOKEN.fullmatch(token):
        return
    raise TrustedPublishingError(
        f"{index_name(exchange.repository_url)} answered the token exchange with something "
        f"that is not an upload token (one line of printable ASCII, at most {MAX_TOKEN_LENGTH} "
        f"characters; it has {len(token)}), so it is not shown and not used. The index, or "
        "something between it and this job, is misbehaving: re-run the job later, and report "
        "it to the index's maintainers if it happens again.",
        title="The index minted a malformed upload token",
    )


def _expiry(expires: object) -> float:
    """When the minted token expires (unix time): the index's `expires` if it is a time within
    the next day, else the 15 minutes Warehouse gives (`1e400`, NaN, `true` and a 400-digit
    number included: any of them would otherwise break the renewal or the revocation)."""
    now = time.time()
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return now + LIFETIME
    # Compared before any conversion: float() of a 400-digit int raises; NaN compares false.
    return float(expires) if now <= expires <= now + LONGEST_LIFETIME else now + LIFETIME


def burn_token(exchange: Exchange, token: UploadToken, *, quick: bool = False) -> str:
    """Revoke `token`; returns what went wrong (for a warning), or an empty string.

    `quick`: one attempt that may take 2 seconds, for a job that is being stopped."""
    url = f"{exchange.base}/_/oidc/burn-token"
    try:
        response = request(
            replace(exchange, policy=RetryPolicy(attempts=1)) if quick else exchange,
            "POST",
            url,
            what="Revoking the upload token",
            json={"token": token.value},
            timeout=QUICK_TIMEOUT if quick else None,
        )
    except (PublishError, requests.RequestException) as e:  # a warning, never a failure
        return getattr(e, "title", None) or type(e).__name__
    if response.status_code in (200, 202, 204):
        return ""
    return f"`POST {url}` answered HTTP {response.status_code}"


class TrustedPublishing:
    """This run's trusted publishing at one index, used as a context manager: leaving it revokes
    every upload token it minted (renewed ones included: an upload may have used one until the
    end), with one quick attempt each when the job is being stopped."""

    def __init__(
        self, shared: Shared, repository_url: str, oidc_request: OidcRequest | None
    ) -> None:
        console = shared.console
        self.exchange = Exchange(
            shared.session, repository_url, shared.policy, console.line, console.mask, oidc_request
        )
        self.console = console
        self.cancellation = shared.cancellation
        self.minted: list[UploadToken] = []
        self._projects: frozenset[str] = frozenset()

    def __enter__(self) -> TrustedPublishing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self.cancellation.deferred():
            while self.minted:
                self._revoke(self.minted.pop(0), quick=self.cancellation.requested)

    def credentials(self, projects: Iterable[str]) -> Credentials:
        """A fresh OIDC token exchanged for an upload token for `projects`."""
        self._projects = frozenset(projects)
        audience = fetch_audience(self.exchange)
        oidc_token = fetch_oidc_token(self.exchange, audience)
        if oidc_token is None:
            raise TrustedPublishingError(NOT_IN_ACTIONS, title="Not in GitHub Actions")
        token = mint_upload_token(self.exchange, oidc_token, self._projects)
        self.minted.append(token)
        self.console.line(
            "Exchanged the OIDC token for an upload token "
            f"({index_name(self.exchange.repository_url)})."
        )
        return Credentials("__token__", token.value, token.expires)

    def renew(self) -> Credentials:
        """Another upload token for the same projects, before the last one expires."""
        return self.credentials(self._projects)

    def prove(self, projects: Iterable[str]) -> str:
        """Mint a token and revoke it at once: proof, in a dry run, that the trusted publisher
        matches this run. The sentence for the log and the summary."""
        self.credentials(projects)
        self._revoke(self.minted.pop())
        message = (
            f"Trusted publishing works: {index_name(self.exchange.repository_url)} exchanged "
            "this run's OIDC token for an upload token, which was revoked at once."
        )
        self.console.line(message, style="green")
        return message

    def sigstore_token(self) -> str:
        """The job's OIDC token for Sigstore (audience `sigstore`), to sign attestations."""
        token = fetch_oidc_token(self.exchange, SIGSTORE_AUDIENCE)
        if token is None:  # the index's token was had a moment ago: the runtime went away
            raise TrustedPublishingError(
                "The Actions runtime gave no OIDC token for Sigstore.", title="No Sigstore token"
            )
        return token

    def _revoke(self, token: UploadToken, *, quick: bool = False) -> None:
        problem = burn_token(self.exchange, token, quick=quick)
        if problem:
            self.console.warning(
                f"The upload token could not be revoked ({problem}). It expires by itself "
                "within 15 minutes and can only upload to this project.",
                title="Upload token not revoked",
            )
        else:
            self.console.line("Revoked the upload token.")


NOT_IN_ACTIONS = (
    "No OIDC token can be had here: trusted publishing works from GitHub Actions (in a job with "
    "`permissions: id-token: write`). Elsewhere, pass an API token in the `INPUT_PASSWORD` "
    "variable, or use `--dry-run` to check the distributions."
)


def reusable_workflow(claims: Mapping[str, object]) -> tuple[str, str] | None:
    """The rule for a job in a reusable workflow: `(the reusable workflow, its caller)`, by
    file, when the job's workflow (`job_workflow_ref`) is not the run's (`workflow_ref`);
    None when they are the same."""
    caller = str(claims.get("workflow_ref", "")).split("@", 1)[0]
    job = str(claims.get("job_workflow_ref", "")).split("@", 1)[0]
    if not caller or not job or caller == job:
        return None
    return job, caller


def _json(response: requests.Response) -> dict[str, object]:
    body = answer_json(response)
    return body if isinstance(body, dict) else {}


# --- why the index refused: the claims it matches on, and the publisher that would match ---

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
    if reusable_workflow(claims):
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
    if reusable_workflow(claims):
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
