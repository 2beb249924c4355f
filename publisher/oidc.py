"""Trusted publishing: the job's OIDC token exchanged at the index for a short-lived upload token.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import requests

from publisher.context import OidcRequest
from publisher.diagnosis import explain_refusal
from publisher.errors import PublishError, TrustedPublishingError
from publisher.http import (
    RetryPolicy,
    Transient,
    answer_text,
    raise_if_transient,
    request,
    with_retries,
)
from publisher.index import index_name, oidc_base

PERMISSION_SNIPPET = """\
```yaml
jobs:
  publish:
    runs-on: ubuntu-latest
    environment: pypi   # if your trusted publisher names one
    permissions:
      id-token: write   # this job may ask GitHub for an OIDC token
```"""


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
    response = request(
        exchange.session,
        "GET",
        url,
        what="Asking the index for its audience",
        policy=exchange.policy,
        log=exchange.log,
    )
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

    def ask_github(_number: int) -> str | None:
        from urllib.parse import quote

        assert runtime is not None
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

    def ask_id(_number: int) -> str | None:
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

    token = with_retries(
        ask_github if runtime is not None else ask_id,
        url="ACTIONS_ID_TOKEN_REQUEST_URL",
        what="Requesting the OIDC token",
        policy=exchange.policy,
        log=exchange.log,
    )
    if token:
        exchange.mask(token)
        if len(token) > MAX_JWT_LENGTH or not JWT.fullmatch(token):
            raise TrustedPublishingError(
                "The Actions runtime answered with an OIDC token that is not a JWT (three "
                f"base64url parts, at most {MAX_JWT_LENGTH} characters; it has {len(token)}), "
                "so it is not shown and "
                "not sent to the index. Something between this job and the Actions runtime "
                "changed it: re-run the job, and report it if it happens again.",
                title="The OIDC token is not a JWT",
            )
    return token


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
        exchange.session,
        "POST",
        url,
        what="Exchanging the OIDC token",
        policy=exchange.policy,
        log=exchange.log,
        json={"token": oidc_token},
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
            exchange.session,
            "POST",
            url,
            what="Revoking the upload token",
            policy=RetryPolicy(attempts=1) if quick else exchange.policy,
            log=exchange.log,
            json={"token": token.value},
            timeout=QUICK_TIMEOUT if quick else None,
        )
    except (PublishError, requests.RequestException) as e:  # a warning, never a failure
        return getattr(e, "title", None) or type(e).__name__
    if response.status_code in (200, 202, 204):
        return ""
    return f"`POST {url}` answered HTTP {response.status_code}"


def _json(response: requests.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
