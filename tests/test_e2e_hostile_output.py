"""A hostile index, runtime or secret cannot write to the log: the action run end to end.

The stand-ins answer with what a hostile (or broken) server could send: a reason phrase with a
bare CR and a workflow command after it, an error page full of commands, a minted token with a
line break, an `expires` no float can hold, an OIDC token that is no JWT; the user gives a
password of several lines. Every line the runner reads (the log split at CR and LF, the summary,
the outputs) is scanned for commands we did not write and for every part of every secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import (
    HOSTILE,
    HOSTILE_TEXTS,
    Runner,
    assert_masked_lines,
    assert_no_injection,
)
from tests.servers import OidcRuntime, StandIn, Warehouse

VERBOSE = pytest.mark.parametrize("verbose", ["false", "true"])
Answer = Callable[[BaseHTTPRequestHandler, bytes], None]


def raw_answer(status_line: str, body: bytes = b"", content_type: str = "text/plain") -> bytes:
    """An HTTP answer as bytes, its status line as given (a bare CR in it included)."""
    head = (
        f"HTTP/1.1 {status_line}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def always(stand_in: StandIn, prefix: str, answer: bytes) -> None:
    """Every request under `prefix` gets `answer`."""

    def take(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        handler.wfile.write(answer)

    stand_in.takeover[prefix] = take


def once(stand_in: StandIn, prefix: str, answer: bytes) -> None:
    """The next request under `prefix` gets `answer`; the ones after it, the stand-in's own."""

    def take(handler: BaseHTTPRequestHandler, _body: bytes) -> None:
        stand_in.takeover.pop(prefix, None)
        handler.wfile.write(answer)

    stand_in.takeover[prefix] = take


def mint_answer(warehouse: Warehouse, token: str | None = None, expires: str = "") -> Answer:
    """The mint-token answer, `token` (default: the one Warehouse minted) and `expires` (JSON
    text, default: Warehouse's) put in it as given."""

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        status, _, payload = warehouse._mint(body)
        minted = json.loads(payload)
        if token is not None:
            minted["token"] = token
        text = json.dumps(minted | ({"expires": "EXPIRES"} if expires else {}))
        text = text.replace('"EXPIRES"', expires)
        handler.wfile.write(raw_answer(f"{status} OK", text.encode(), "application/json"))

    return answer


def secrets_of(runtime: OidcRuntime, warehouse: Warehouse) -> list[str]:
    return [*runtime.issued, *warehouse.minted_tokens]


BUSY = f"503 Busy\r::error title={HOSTILE}::{HOSTILE}"


@VERBOSE
def test_a_reason_phrase_cannot_start_a_command(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    once(warehouse, "/_/oidc/audience", raw_answer(BUSY))
    once(warehouse, "/_/oidc/mint-token", raw_answer(BUSY))
    once(warehouse, "/legacy/", raw_answer(BUSY))
    once(runtime, "/token", raw_answer(BUSY))
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose})

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert_no_injection(run, *secrets_of(runtime, warehouse))
    assert "Exchanging the OIDC token: HTTP 503 Busy\\r::error" in run.stdout  # shown, as data


@VERBOSE
def test_an_error_page_cannot_start_a_command(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], verbose: str
) -> None:
    page = ("File refused." + "".join(HOSTILE_TEXTS) + "\r\n\r<b>" + HOSTILE_TEXTS[3]).encode()
    refusal = raw_answer(f"400 Refused\r::warning::{HOSTILE}", page)
    always(warehouse, "/legacy/", refusal)
    run = runner({"repository-url": warehouse.upload_url, "verbose": verbose})

    assert run.returncode == 1, run.log
    assert "Traceback" not in run.log
    assert "File refused." in run.summary
    assert all(m.burned for m in warehouse.minted)
    assert_no_injection(run, *secrets_of(runtime, warehouse))


@pytest.mark.parametrize(
    "token",
    [
        "pypi-" + "A" * 40 + f"\n::error title={HOSTILE}::{HOSTILE}",
        "pypi-" + "B" * 40 + f"\r##[error]{HOSTILE}",
        "pypi-" + "C" * 40 + " and-more-of-it",
        "pypi-" + "D" * 40 + "\x1b[2J",
        "pypi-" + "E" * 5000,
    ],
    ids=["LF", "CR", "space", "escape", "long"],
)
def test_a_malformed_minted_token_is_refused_and_never_shown(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], token: str
) -> None:
    warehouse.takeover["/_/oidc/mint-token"] = mint_answer(warehouse, token)
    run = runner({"repository-url": warehouse.upload_url, "verbose": "true"})

    assert_no_injection(run, token, *runtime.issued)
    assert_masked_lines(run, token)
    assert run.returncode == 1, run.log
    assert "::error title=The index minted a malformed upload token::" in run.stdout
    assert "Traceback" not in run.log
    assert warehouse.upload_attempts == []  # never used


@pytest.mark.parametrize(
    "expires",
    ["1" + "0" * 400, "1e400", "NaN", "-Infinity", "true"],
    ids=["400 digits", "1e400", "NaN", "-Infinity", "true"],
)
def test_an_expiry_no_float_holds_is_no_crash_and_the_token_is_revoked(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path], expires: str
) -> None:
    warehouse.takeover["/_/oidc/mint-token"] = mint_answer(warehouse, expires=expires)
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert "Traceback" not in run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert len(warehouse.minted) == 1  # not renewed before every file
    assert warehouse.minted[0].burned
    assert_no_injection(run, *secrets_of(runtime, warehouse))


def test_an_oidc_token_that_is_no_jwt_is_refused_and_never_shown(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    value = f"eyJhbGciOi.not-a-jwt-at-all\r\n::error title={HOSTILE}::{HOSTILE}"
    answer = raw_answer("200 OK", json.dumps({"value": value}).encode(), "application/json")
    always(runtime, "/token", answer)
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 1, run.log
    assert "::error title=The OIDC token is not a JWT::" in run.stdout
    assert warehouse.count("POST", "/_/oidc/mint-token") == 0  # never sent
    assert_no_injection(run, value)
    assert_masked_lines(run, value)


@pytest.mark.parametrize("break_", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_a_password_of_several_lines_is_masked_line_by_line(
    runner: Runner, warehouse: Warehouse, dists: list[Path], break_: str
) -> None:
    password = f"first-half-of-the-password{break_}second-half-of-the-password{break_}"
    warehouse.passwords["alice"] = password
    run = runner(
        {
            "repository-url": warehouse.upload_url,
            "user": "alice",
            "password": password,
            "verbose": "true",
        }
    )

    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert_no_injection(run, password)
    assert_masked_lines(run, password)
