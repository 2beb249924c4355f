"""The one retry policy: what is retried, how long it waits, and what it refuses."""

from __future__ import annotations

import email.utils
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from publisher.errors import IndexRefused, RedirectRefused
from publisher.http import (
    ANSWER_LIMIT,
    RetryPolicy,
    Transient,
    answer_json,
    answer_text,
    feed_html,
    make_session,
    request,
    with_retries,
)
from tests.servers import StandIn, Warehouse

FAST = RetryPolicy(delay=0.001)


@dataclass(frozen=True)
class Via:
    """A caller of `request`: a session, a retry policy, and where the log lines go."""

    session: requests.Session
    policy: RetryPolicy
    log: Callable[[str], None] = print


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


def test_429_is_retried_after_what_the_server_asks_as_for_sigstore() -> None:
    """The one rule for the index and Sigstore alike (attestations._transient uses it too)."""
    answers = [answer(429, {"Retry-After": "0"}, reason="Too Many Requests"), answer(200)]
    log: list[str] = []

    response = with_retries(
        lambda _n: answers.pop(0), url="u", what="x", policy=FAST, log=log.append
    )

    assert response.status_code == 200
    assert log == ["x: HTTP 429 Too Many Requests; retry 1 of 4 in 0.0 s"]


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
        request(Via(session, FAST), "GET", f"{warehouse.url}/x", what="x")
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


# --- outside text never raises, and every wait ends ---------------------------------------------


def test_any_retry_after_is_a_sane_wait() -> None:
    policy = RetryPolicy()
    for value in (
        "٣",  # an Arabic-Indic three: float() reads it, RFC 9110 does not
        "²",  # passes str.isdigit, fails float() and int()
        "¹²",
        "9" * 5000,  # int() refuses past 4300 digits
        "-5",
        "1e3",
        "nan",
        "inf",
        "0x10",
        "3.5",
        "",
        "\x00",
        "Wed, 21 Oct 99999 07:28:00 GMT",  # no calendar has it
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 +9999",
        "Mon, 1 Jan 9999 23:59:59 -2359",
        "garbage",
    ):
        assert 0 <= policy.wait(1, value) <= policy.max_delay, value


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    policy = RetryPolicy()
    assert policy.wait(1, " 7 ") == 7
    assert policy.wait(1, "9" * 5000) == policy.max_delay
    assert policy.wait(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 0
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    assert 10 <= policy.wait(1, soon) <= 12
    assert 1.5 <= policy.wait(1, "²") <= 2.5  # not a number: the usual backoff


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><![note[ x ]]><p>Upload refused</p></body></html>",  # AssertionError
        b"<html><body><p>Upload refused</p><![ifx]></body></html>",
    ],
)
def test_answer_text_of_a_page_the_parser_rejects_is_the_page_as_it_came(body: bytes) -> None:
    said = answer_text(answer(400, {"content-type": "text/html"}, body))
    assert "Upload refused" in said
    assert said.startswith("<html>")


def test_answer_text_decodes_what_no_codec_reads_as_utf8() -> None:
    for charset in ("undefined", "punycode", "rot13", "no-such-codec", "utf\x00"):
        response = answer(400, {"content-type": f"text/plain; charset={charset}"}, "é ✓".encode())
        response.encoding = charset  # as requests takes it from the header
        assert answer_text(response) == "é ✓", charset


def test_answer_text_shows_controls_as_escapes() -> None:
    said = answer_text(answer(400, {"content-type": "text/plain"}, b"bad\x1b[31m \x00thing\x7f"))
    assert said == "bad\\x1b[31m \\x00thing\\x7f"


def test_html_is_parsed_in_bounded_time_and_never_raises() -> None:
    for page in (
        "<a" * 40_000,  # an unterminated tag: quadratic in Python's parser
        "<!--" * 20_000,
        "</" * 40_000,
        "<" * 80_000,
        "<![note[" + "x" * 70_000,
        "a\x00b<a href='x\x00'>" * 5_000,
        "<script>" + "x" * 200_000,  # waits for its end, longer than 64 kB: given up
        "&#99999999999999999999;" * 3_000,
    ):
        started = time.monotonic()
        feed_html(_Text(), page)
        assert time.monotonic() - started < 2, page[:20]
        said = answer_text(answer(403, {"content-type": "text/html"}, page.encode()))
        assert time.monotonic() - started < 4, page[:20]
        assert len(said) <= 2000


class _Text(HTMLParser):
    pass


class Hostile(StandIn):
    """Answers `body` with `headers`; `takeover` for what no status line can say."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"OK")

    def handle(self, method: str, path: str, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        return self.answer


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


def drip(head: bytes, forever: bytes, interval: float = 0.05, seconds: float = 8.0):  # type: ignore[no-untyped-def]
    """An answer that begins with `head`, then sends `forever` a byte every `interval` s: each
    packet well within any read time-out, the whole never (or after `seconds`)."""

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.wfile.write(head)
        handler.wfile.flush()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            handler.wfile.write(forever[:1])
            handler.wfile.flush()
            time.sleep(interval)

    return answer


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Slow: ",  # headers that never end
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9999\r\n\r\n",  # a body
    ],
)
@pytest.mark.parametrize("limit", [None, 100_000])  # read by the session, or streamed in full
def test_an_answer_sent_a_byte_at_a_time_ends_at_the_read_timeout(
    hostile: Hostile, head: bytes, limit: int | None
) -> None:
    hostile.takeover["/slow"] = drip(head, b"x")
    log: list[str] = []
    started = time.monotonic()
    with make_session((1.0, 0.5)) as session, pytest.raises(IndexRefused) as raised:
        request(
            Via(session, RetryPolicy(attempts=2, delay=0.01), log.append),
            "GET",
            f"{hostile.url}/slow",
            what="Reading",
            limit=limit,
        )
    assert time.monotonic() - started < 2.5  # 2 attempts of 0.5 s, and a wait
    assert raised.value.title == "Reading failed: timed out"
    assert log[0].startswith("Reading: timed out; retry 1 of 1")


def test_an_answer_read_whole_keeps_its_first_mebibyte_and_a_page_is_whole_or_refused(
    hostile: Hostile,
) -> None:
    hostile.answer = (200, {"content-type": "text/plain"}, b"x" * (ANSWER_LIMIT + 5000))
    with make_session() as session:
        assert len(session.get(f"{hostile.url}/big").content) == ANSWER_LIMIT
        page = request(Via(session, FAST), "GET", hostile.url, what="x", limit=10**7)
        assert len(page.content) == ANSWER_LIMIT + 5000
        with pytest.raises(IndexRefused) as raised:
            request(Via(session, FAST), "GET", hostile.url, what="x", limit=10_000)
        assert session.get(f"{hostile.url}/again").status_code == 200  # the session goes on
    assert raised.value.title == "the answer is larger than 10000 bytes"
    assert hostile.count("GET", "/") == 4  # too large is not retried


def test_a_broken_body_is_retried_as_a_connection_failure(hostile: Hostile) -> None:

    def broken(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n")

    hostile.takeover["/broken"] = broken
    log: list[str] = []
    with make_session() as session, pytest.raises(IndexRefused):
        request(Via(session, FAST, log.append), "GET", f"{hostile.url}/broken", what="x")
    assert len(log) == FAST.attempts - 1
    assert all(line.startswith("x: connection failed (") for line in log)


def test_a_redirect_to_what_is_no_url_is_refused_as_any_redirect(hostile: Hostile) -> None:
    for location in ("http://[::1/legacy/", "http://127.0.0.1:port/", "http://h:99999999/"):
        hostile.answer = (302, {"location": location}, b"")
        with make_session() as session, pytest.raises(RedirectRefused) as raised:
            request(Via(session, FAST), "POST", hostile.url, what="Minting")
        assert raised.value.location == location


def test_answer_json_is_none_for_what_is_not_json_and_never_an_error() -> None:
    assert answer_json(answer(200, {}, b'{"audience": "pypi"}')) == {"audience": "pypi"}
    assert answer_json(answer(200, {}, '{"a": "é"}'.encode("utf-16"))) == {"a": "é"}
    for body in (b"[" * 100_000, b"<html>", b"", b"\xff\xfe\xfd", b"1" * 5000):
        assert answer_json(answer(200, {}, body)) is None
