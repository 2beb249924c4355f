"""The trusted-publishing exchange, step by step, against the stand-in runtime and Warehouse."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler

import pytest

from publisher.context import load_context
from publisher.errors import RedirectRefused, TrustedPublishingError
from publisher.http import RetryPolicy, make_session
from publisher.trusted_publishing import (
    Exchange,
    UploadToken,
    burn_token,
    fetch_audience,
    fetch_oidc_token,
    mint_upload_token,
    read_claims,
)
from tests.conftest import HOSTILE, secret_parts
from tests.servers import OidcRuntime, Publisher, StandIn, Warehouse


@pytest.fixture
def masked() -> list[str]:
    return []


@pytest.fixture
def exchange(warehouse: Warehouse, masked: list[str]) -> Iterator[Exchange]:
    """As the run makes it; with the Actions runtime where a test asked for `github` first."""
    with make_session() as session:
        yield Exchange(
            session,
            warehouse.upload_url,
            RetryPolicy(delay=0.01),
            log=lambda _: None,
            mask=masked.append,
            oidc_request=load_context(os.environ).oidc_request,
        )


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, runtime: OidcRuntime) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", runtime.request_url)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", runtime.request_token)


def test_audience_comes_from_the_upload_host(exchange: Exchange, warehouse: Warehouse) -> None:
    warehouse.audience = "testpypi"
    assert fetch_audience(exchange) == "testpypi"
    assert warehouse.requests == [("GET", "/_/oidc/audience")]


@pytest.mark.parametrize(("status", "word"), [(403, "disabled"), (404, "not available")])
def test_audience_refused_points_to_the_password_input(
    exchange: Exchange, warehouse: Warehouse, status: int, word: str
) -> None:
    warehouse.audience_status = status
    with pytest.raises(TrustedPublishingError) as raised:
        fetch_audience(exchange)
    assert word in raised.value.title
    assert "`password`" in raised.value.markdown


def test_oidc_token_is_masked_and_has_the_audience(
    github: None, exchange: Exchange, runtime: OidcRuntime, masked: list[str]
) -> None:
    token = fetch_oidc_token(exchange, "pypi")

    assert token == runtime.issued[0]
    assert masked == [token]
    assert read_claims(token)["aud"] == "pypi"


def test_no_permission_says_what_to_add(
    github: None, exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")  # in GitHub Actions, without the
    with pytest.raises(TrustedPublishingError) as raised:  # permission: no request at all
        fetch_oidc_token(replace(exchange, oidc_request=None), "pypi")
    assert "id-token: write" in raised.value.title
    assert "permissions:\n      id-token: write" in raised.value.markdown


def test_outside_ci_there_is_no_token(exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "BUILDKITE",
        "CIRCLECI",
        "GOOGLE_SERVICE_ACCOUNT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    assert fetch_oidc_token(exchange, "pypi") is None


def test_runtime_5xx_is_retried(github: None, exchange: Exchange, runtime: OidcRuntime) -> None:
    runtime.fail_next = [503, 502]
    assert fetch_oidc_token(exchange, "pypi") == runtime.issued[0]
    assert runtime.count("GET", "/token") == 3


def test_mint_returns_the_token_and_its_expiry(
    github: None, exchange: Exchange, warehouse: Warehouse, masked: list[str]
) -> None:
    warehouse.token_lifetime = 600
    token = mint_upload_token(exchange, fetch_oidc_token(exchange, "pypi") or "", ["example-pkg"])

    assert token.value == warehouse.minted_tokens[0]
    assert token.value in masked
    assert abs(token.expires - (time.time() + 600)) < 5


def test_a_jwt_is_exchanged_once(github: None, exchange: Exchange) -> None:
    jwt = fetch_oidc_token(exchange, "pypi") or ""
    mint_upload_token(exchange, jwt, ["example-pkg"])
    with pytest.raises(TrustedPublishingError, match="invalid-reuse-token"):
        mint_upload_token(exchange, jwt, ["example-pkg"])


def test_refusal_shows_claims_and_the_matching_publisher(
    github: None, exchange: Exchange, warehouse: Warehouse
) -> None:
    warehouse.publishers = [Publisher(workflow="publish.yml")]
    jwt = fetch_oidc_token(exchange, "pypi") or ""
    with pytest.raises(TrustedPublishingError) as raised:
        mint_upload_token(exchange, jwt, ["example-pkg"])

    text = raised.value.markdown
    assert "- `invalid-publisher`: valid token, but no corresponding publisher" in text
    for claim in ("sub", "repository", "repository_owner_id", "job_workflow_ref", "environment"):
        assert f"| `{claim}` |" in text
    assert "- Owner: `octo-org`" in text
    assert "- Repository name: `example-pkg`" in text
    assert "- Workflow name: `release.yml`" in text
    assert "- Environment name: `pypi`" in text
    assert jwt not in text
    assert jwt.split(".")[2] not in text  # not even the signature


def test_refusal_of_a_non_json_answer_is_explained(
    exchange: Exchange, warehouse: Warehouse
) -> None:
    warehouse.fail_next["/_/oidc/mint-token"] = [418]
    with pytest.raises(TrustedPublishingError, match="HTTP 418"):
        mint_upload_token(exchange, "a.b.c", [])


def test_burn_revokes_and_failure_is_only_reported(
    github: None, exchange: Exchange, warehouse: Warehouse
) -> None:
    token = mint_upload_token(exchange, fetch_oidc_token(exchange, "pypi") or "", ["example-pkg"])
    assert burn_token(exchange, token) == ""
    assert warehouse.minted[0].burned

    warehouse.burn_status = 404
    assert "HTTP 404" in burn_token(exchange, UploadToken("pypi-x", 0))


def test_burn_never_raises(exchange: Exchange, warehouse: Warehouse) -> None:
    warehouse.close()
    assert burn_token(exchange, UploadToken("pypi-x", 0)) != ""


def test_session_refuses_redirects_with_both_urls(exchange: Exchange, warehouse: Warehouse) -> None:
    warehouse.redirect["/_/oidc/audience"] = "https://evil.example/_/oidc/audience"
    with pytest.raises(RedirectRefused) as raised:
        fetch_audience(exchange)
    assert f"`{warehouse.url}/_/oidc/audience`" in raised.value.markdown
    assert "`https://evil.example/_/oidc/audience`" in raised.value.markdown


def answer_with(stand_in: StandIn, prefix: str, text: str) -> None:
    """Every request under `prefix` is answered 200 with this JSON text, whatever it holds."""
    payload = text.encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()

    def answer(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(head + payload)

    stand_in.takeover[prefix] = answer


def assert_never_shown(error: TrustedPublishingError, secret: str) -> None:
    for part in secret_parts(secret):
        assert part not in error.title
        assert part not in error.markdown


@pytest.mark.parametrize(
    "token",
    [
        "pypi-" + "A" * 40 + f"\n::error title={HOSTILE}::{HOSTILE}",
        "pypi-" + "B" * 40 + "\r\n",
        "pypi-" + "C" * 40 + " and-more",
        "pypi-" + "D" * 40 + "\x00",
        "pypi-" + "E" * 40 + "\u00e9",
        "pypi-" + "F" * 4092,  # one more than the longest taken
    ],
    ids=["LF", "CRLF", "space", "NUL", "non-ASCII", "too long"],
)
def test_a_minted_token_that_is_not_a_plain_token_is_refused_unshown(
    exchange: Exchange, warehouse: Warehouse, masked: list[str], token: str
) -> None:
    answer_with(warehouse, "/_/oidc/mint-token", json.dumps({"success": True, "token": token}))
    with pytest.raises(TrustedPublishingError) as raised:
        mint_upload_token(exchange, "a.b.c", ["example-pkg"])

    assert raised.value.title == "The index minted a malformed upload token"
    assert masked == [token]  # masked before anything else, all the same
    assert_never_shown(raised.value, token)


@pytest.mark.parametrize(
    "expires",
    [
        "1" + "0" * 400,  # float() of it raises
        "1e400",  # infinity
        "-1e400",
        "NaN",
        "true",
        "null",
        '"1800000000"',
        "1",  # long gone
        str(int(time.time()) + 10 * 24 * 3600),  # ten days from now
    ],
    ids=["400 digits", "1e400", "-1e400", "NaN", "true", "null", "string", "1", "10 days"],
)
def test_an_expiry_that_is_no_sane_time_is_taken_as_15_minutes(
    exchange: Exchange, warehouse: Warehouse, expires: str
) -> None:
    text = json.dumps({"success": True, "token": "pypi-token", "expires": 0})
    answer_with(warehouse, "/_/oidc/mint-token", text.replace("0}", f"{expires}}}"))

    token = mint_upload_token(exchange, "a.b.c", [])
    assert abs(token.expires - (time.time() + 15 * 60)) < 5


@pytest.mark.parametrize(
    "value",
    [
        "eyJhbGciOi.e30.c2lnbmF0dXJl\n::error::" + HOSTILE,
        "eyJhbGciOi.e30.c2lnbmF0dXJl ",
        "eyJhbGciOi.e30",
        "eyJhbGciOi.e30.c2ln.bmF0",
        "eyJhbGciOi.e30=.c2lnbmF0dXJl",
        "eyJhbGciOi.e30." + "A" * 16400,
    ],
    ids=["LF", "space", "two parts", "four parts", "padding", "too long"],
)
def test_an_oidc_token_that_is_not_a_jwt_is_refused_unshown(
    github: None, exchange: Exchange, runtime: OidcRuntime, masked: list[str], value: str
) -> None:
    answer_with(runtime, "/token", json.dumps({"value": value}))
    with pytest.raises(TrustedPublishingError) as raised:
        fetch_oidc_token(exchange, "pypi")

    assert raised.value.title == "The OIDC token is not a JWT"
    assert masked == [value]
    assert_never_shown(raised.value, value)
