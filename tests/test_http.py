"""The one retry policy: what is retried, how long it waits, and what it refuses."""

from __future__ import annotations

import io

import pytest
import requests

from publisher.errors import IndexRefused, RedirectRefused
from publisher.http import (
    RetryPolicy,
    Transient,
    answer_text,
    make_session,
    request,
    with_retries,
)
from tests.servers import Warehouse

FAST = RetryPolicy(delay=0.001)


def answer(
    status: int, headers: dict[str, str] | None = None, body: bytes = b"", reason: str = "Test"
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.headers.update(headers or {})
    response.raw = io.BytesIO(body)  # as a real response's stream
    return response


def test_timeouts_connection_errors_and_5xx_are_retried_then_it_succeeds() -> None:
    failures: list[Exception | requests.Response] = [
        requests.Timeout("slow"),
        requests.ConnectionError("reset"),
        answer(503),
        Transient("id: 502"),
    ]
    log: list[str] = []

    def attempt(number: int) -> requests.Response:
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        return answer(200)

    response = with_retries(attempt, url="u", what="Doing it", policy=FAST, log=log.append)

    assert response.status_code == 200
    assert [line.split(";")[0] for line in log] == [
        "Doing it: timed out",
        "Doing it: connection failed (reset)",
        "Doing it: HTTP 503 Test",
        "Doing it: id: 502",
    ]
    assert "retry 4 of 4" in log[-1]


def test_4xx_is_an_answer_and_never_retried() -> None:
    attempts: list[int] = []

    def attempt(number: int) -> requests.Response:
        attempts.append(number)
        return answer(422)

    response = with_retries(attempt, url="u", what="x", policy=FAST, log=print)
    assert response.status_code == 422
    assert attempts == [1]


def test_giving_up_names_the_cause_and_the_attempts() -> None:
    with pytest.raises(IndexRefused) as raised:
        with_retries(
            lambda n: answer(502), url="https://i/", what="Uploading a", policy=FAST, log=print
        )
    assert raised.value.title == "Uploading a failed: HTTP 502 Test"
    assert "failed 5 times" in raised.value.markdown


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy()
    waits = [policy.wait(n, None) for n in (1, 2, 3, 4)]
    for wait, base in zip(waits, (2, 4, 8, 16), strict=True):
        assert 0.75 * base <= wait <= 1.25 * base
    assert 22 <= sum(waits) <= 38  # about half a minute in all
    assert policy.wait(1, "7") == 7
    assert policy.wait(1, "600") == policy.max_delay


def test_redirect_is_refused(warehouse: Warehouse) -> None:
    warehouse.redirect["/x"] = "http://127.0.0.1:1/elsewhere"
    with make_session() as session, pytest.raises(RedirectRefused) as raised:
        request(session, "GET", f"{warehouse.url}/x", what="x", policy=FAST, log=print)
    assert "http://127.0.0.1:1/elsewhere" in raised.value.markdown
    assert warehouse.count("GET", "/") == 1


def test_answer_text_of_a_warehouse_error_page_keeps_only_what_the_status_line_lacks() -> None:
    page = (
        b"<html>\n <head>\n  <title>400 File too large.</title>\n </head>\n <body>\n"
        b"  <h1>400 File too large.</h1>\n  The server could not comply with the request.<br/><br/>"
        b"\nFile too large.\n\n </body>\n</html>"
    )
    response = answer(400, {"content-type": "text/html; charset=UTF-8"}, page, "File too large.")

    assert answer_text(response) == "The server could not comply with the request."


def test_answer_text_of_a_firewall_page_is_its_visible_text() -> None:
    page = (
        b"<!DOCTYPE html><html><head><style>body {color: red}</style><script>var a = 1;</script>"
        b"</head><body><h2>Request blocked</h2><p>Uploads of binaries are not allowed from"
        b"\n   outside.</p><p>Support ID: <b>1234</b> &amp; more</p>"
        b"<pre>line 1\nline 2</pre></body></html>"
    )
    response = answer(403, {"content-type": "text/html"}, page, "Forbidden")

    assert answer_text(response) == (
        "Request blocked\nUploads of binaries are not allowed from outside.\n"
        "Support ID: 1234 & more\nline 1\nline 2"
    )


def test_answer_text_keeps_json_and_plain_text_and_cuts_long_answers() -> None:
    json_body = b'{"errors": [{"status": 400, "message": "No enum constant v2_1"}]}'
    assert answer_text(answer(400, {"content-type": "application/json"}, json_body)) == (
        json_body.decode()
    )
    assert answer_text(answer(409, {}, b"Conflict", "Conflict")) == ""
    long = answer_text(answer(400, {"content-type": "text/plain"}, b"x" * 5000), limit=100)
    assert len(long) == 100
    assert long.endswith("…")
