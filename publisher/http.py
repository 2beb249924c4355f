"""How every request is made, and the one place that decides what is retried and how long we wait.

Connection errors, time-outs, 5xx answers (a proxy's HTML maintenance page included) and 429
(too many requests, with its `Retry-After`) are retried with exponential backoff and jitter,
for the index as for Sigstore: 5 attempts, about half a minute of waiting in all. Any other 4xx
is an answer, never retried. A redirect is never followed: credentials go only to the URL
the user configured.

Every wait has an end, whatever the server does. A connection is made within the connect
time-out, and the answer (status line, headers and body, counted from the moment the request
was sent) must be in within the read time-out, in all: a server that sends a byte now and then
cannot stretch it, as it stretches http.client's wait for each packet. An answer read whole is
cut at `ANSWER_LIMIT` (what it says is at its start); a simple page is read whole or not at all,
up to `PAGE_LIMIT` (`request(..., limit=...)`). Text is decoded as declared or as UTF-8, never
guessed, and HTML is parsed in bounded time: no bytes from outside raise here.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import platform
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Protocol, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3.exceptions import ReadTimeoutError

from publisher import __version__
from publisher.errors import IndexRefused, PublishError, RedirectRefused
from publisher.network import raise_if_untrusted

# (connect, read): the read time-out is for the whole answer, from the request sent to its end.
TIMEOUT = (10.0, 60.0)
UPLOAD_TIMEOUT = (10.0, 300.0)  # the index may take a while to answer after a large file
ANSWER_LIMIT = 1 << 20  # bytes kept of an answer read whole: JSON of a few kB, or an error page
TEXT_LIMIT = 64 << 10  # bytes of an answer shown in the log (`answer_text`)
PAGE_LIMIT = 32 << 20  # a simple page: about 80 000 files in PEP 691 JSON
PARSE_SECONDS = 15.0  # to parse an HTML page (32 MiB of real links take about 4 s)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    delay: float = 2.0  # before the first retry; doubled before each next one
    max_delay: float = 30.0

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait after failed `attempt` (1-based): the server's word if it gave one
        that reads as RFC 9110 `Retry-After`, never more than `max_delay`."""
        asked = _retry_after(retry_after or "")
        if asked is not None:
            return min(asked, self.max_delay)
        return min(self.delay * 2.0 ** (attempt - 1), self.max_delay) * random.uniform(0.75, 1.25)  # noqa: S311


_DIGITS = re.compile(r"[0-9]+")


def _retry_after(value: str) -> float | None:
    """Seconds in ASCII digits, or an HTTP date: None for anything else.

    `str.isdigit`, `int()` and `float()` take digits of other scripts, and not the same ones
    (`²` passes `isdigit` and fails both), so the ASCII pattern comes first; `float()` then
    reads any length of digits (`int()` refuses past 4300). A date in the past is now."""
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # `-0000`: UTC, says RFC 5322
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (ValueError, TypeError, OverflowError):  # not a date, or one no calendar has
        return None


class _Adapter(HTTPAdapter):
    """No urllib3 retries (ours are below), a time-out on every request, twine's included, and
    every answer in within it (see `_TimedResponse`); an answer not streamed is read here, at
    most `ANSWER_LIMIT` of it, so that no caller of `content`, `text` or `json()` reads more."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _timed(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return _timed(super().proxy_manager_for(proxy, **proxy_kwargs))

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        response = super().send(request, stream, timeout or self.timeout, verify, cert, proxies)
        if not stream:
            read_answer(response, ANSWER_LIMIT)
        return response


class _Session(requests.Session):
    """A session that never follows a redirect (see `_final`), so never prepares one either:
    requests does, for `Response.next`, even with `allow_redirects=False`, and a `Location`
    that does not parse (`http://[::1`, a port that is no number) raised there."""

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(())


def make_session(timeout: tuple[float, float] | None = None) -> requests.Session:
    """A session with our time-outs: `TIMEOUT` unless told (read when called, so tests can
    shorten it)."""
    session = _Session()
    session.headers["User-Agent"] = (
        f"publisher/{__version__} ({platform.python_implementation()} {platform.python_version()})"
    )
    add_timeouts(session, timeout)
    return session


def add_timeouts(session: requests.Session, timeout: tuple[float, float] | None = None) -> None:
    """Give a session made elsewhere (sigstore's clients make their own) our time-outs, and no
    retries of urllib3's: a hung service is retried by `with_retries`, not waited for forever."""
    if isinstance(session.get_adapter("https://"), _Adapter):
        return
    adapter = _Adapter(timeout or TIMEOUT)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


class Caller(Protocol):
    """Who makes a request: its session, its retry policy, and where its log lines go (the
    stages' `Shared`, trusted publishing's `Exchange`)."""

    @property
    def session(self) -> requests.Session: ...

    @property
    def policy(self) -> RetryPolicy: ...

    def log(self, text: str, /) -> None: ...


def request(
    caller: Caller,
    method: str,
    url: str,
    *,
    what: str,
    limit: int | None = None,
    gave_up: Callable[[str], PublishError] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One request with the caller's retry policy; the first answer that is not a 5xx or 429.

    `limit`: the body is wanted whole (a simple page), read within the attempt (a time-out
    while reading is retried), and at most this many bytes: a larger one is `IndexRefused`.
    Without it, the session keeps the first `ANSWER_LIMIT` bytes of the body. `gave_up`: as
    for `with_retries`."""

    def attempt(_number: int) -> requests.Response:
        response = caller.session.request(
            method, url, allow_redirects=False, stream=limit is not None, **kwargs
        )
        if limit is None or response.status_code >= 500 or response.is_redirect:
            return response  # read by the session, or left to `with_retries`, which closes it
        if read_answer(response, limit):
            raise IndexRefused(
                f"`{method} {url}` answered more than {_size(limit)}: too much to be read as "
                "an index page.",
                title=f"the answer is larger than {_size(limit)}",
            )
        return response

    return with_retries(
        attempt, url=url, what=what, policy=caller.policy, log=caller.log, gave_up=gave_up
    )


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


class Transient(Exception):
    """Raised by an attempt to ask for another one: `cause` says why, for the log."""

    def __init__(self, cause: str, retry_after: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after


def with_retries(
    attempt: Callable[[int], T],
    *,
    url: str,
    what: str,
    policy: RetryPolicy,
    log: Callable[[str], None],
    gave_up: Callable[[str], PublishError] | None = None,
) -> T:
    """Call `attempt(n)` until it succeeds, gives a final answer, or the attempts run out.

    A response is final unless it is a 5xx or a 429; a connection error, a time-out or
    `Transient` asks for another attempt, except a certificate that does not verify:
    `CertificateNotTrusted` at once. `attempt` gets its number (1-based) so that a retried
    upload can tell a file that an earlier, unanswered attempt did deliver from a real
    conflict. When the attempts run out, `gave_up(last cause)` is the error (by default, one
    about the index).
    """
    cause = ""
    for number in range(1, policy.attempts + 1):
        try:
            return _final(attempt(number), url)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise_if_untrusted(e, url)  # a certificate that does not verify never will
            cause, retry_after = describe_failure(e), None
        except Transient as e:
            raise_if_untrusted(e, url)  # what sigstore's and tuf's clients met, wrapped
            cause, retry_after = e.cause, e.retry_after
        if number < policy.attempts:
            delay = policy.wait(number, retry_after)
            log(f"{what}: {cause}; retry {number} of {policy.attempts - 1} in {delay:.1f} s")
            time.sleep(delay)
    if gave_up is not None:
        raise gave_up(cause)
    raise IndexRefused(
        f"{what} failed {policy.attempts} times, the last time with: {cause}.\n\n"
        f"`{url}` seems to be in trouble; this is usually over within minutes. Re-run the job "
        "later (with `skip-existing: true` if some files were already uploaded). "
        "https://status.python.org tells about PyPI's own incidents.",
        title=f"{what} failed: {cause}",
    )


def read_answer(response: requests.Response, limit: int) -> bool:
    """Read the body of `response` now, at most `limit` bytes (decompressed), and keep it for
    `content`, `text` and `json()`; True if there was more (then the connection is closed and
    the rest never read). The encoding becomes one that decodes (see `decode`).

    A time-out while reading is `requests.ReadTimeout` and a broken or undecodable body a
    `requests.ConnectionError`, as they are before the first byte: both are retried."""
    body = bytearray()
    try:
        for chunk in response.iter_content(64 << 10):
            body += chunk
            if len(body) > limit:
                break
    except requests.ConnectionError as e:
        if e.args and isinstance(e.args[0], ReadTimeoutError):  # how requests wraps it
            raise requests.ReadTimeout(e.args[0], request=response.request) from e
        raise
    except (ChunkedEncodingError, ContentDecodingError) as e:
        raise requests.ConnectionError(e, request=response.request) from e
    more = len(body) > limit
    if more:
        response.close()
        del body[limit:]
    response._content = bytes(body)
    response.encoding = _encoding(response.encoding, response._content)
    return more


def answer_json(response: requests.Response) -> object | None:
    """The answer's JSON value; None if it is not JSON, or nests deeper than Python's stack
    (`[[[[...`: a RecursionError, which `response.json()` lets through)."""
    try:
        value: object = json.loads(response.content or b"")  # UTF-8, -16 or -32 (RFC 8259)
    except (ValueError, RecursionError):
        return None
    return value


def decode(body: bytes, encoding: str | None) -> str:
    """`body` as text: in the encoding declared if it decodes, else UTF-8 (the web's and JSON's);
    a byte that does not decode becomes U+FFFD. Never a guess (charset detection on a large
    body takes seconds) and never an error (`charset=undefined` raises in requests' `text`)."""
    return body.decode(_encoding(encoding, body), "replace")


def _encoding(declared: str | None, body: bytes) -> str:
    if declared:
        try:
            body.decode(declared, "replace")
            return declared
        except (LookupError, ValueError):  # unknown, not a text codec, or one that always fails
            pass
    return "utf-8"


def answer_text(response: requests.Response, limit: int = 2000) -> str:
    """What an answer says, fit for a log: an HTML page (Warehouse's errors, a proxy's or a
    firewall's page) reduced to its text, without the lines that repeat the status line (Warehouse
    puts its message in both), at most `limit` characters. Only the first `TEXT_LIMIT` bytes are
    read; a page the HTML parser cannot read is shown as it came. Controls are shown as escapes."""
    body = decode((response.content or b"")[:TEXT_LIMIT], response.encoding)
    if "html" in response.headers.get("content-type", "") or body.lstrip().startswith("<"):
        parser = _TextOfHtml()
        if feed_html(parser, body):
            body = "\n".join(parser.lines)
    repeated = {f"{response.status_code} {response.reason}", response.reason}
    lines = [
        _printable(line)
        for line in (" ".join(part.split()) for part in body.strip().splitlines())
        if line and line not in repeated
    ]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _printable(line: str) -> str:
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in line)


def feed_html(parser: HTMLParser, text: str, seconds: float = PARSE_SECONDS) -> bool:
    """Give `text` to `parser`; False if it could not be parsed whole within `seconds`.

    Python's parser raises on some markup (`<![foo[`, a marked section of a keyword it does not
    know, raises AssertionError in 3.11; more under `python -O`), and takes time quadratic in
    the length of an unterminated construct (`<a<a<a...`, `<!--<!--...`). So it is fed in
    pieces: it never waits for the end of a construct longer than 64 kB, and what it still
    waits for at the end is parsed as a last piece (`close`) only if short; any time past
    `seconds` counts as unparsable."""
    deadline = time.monotonic() + seconds
    piece = 16 << 10
    try:
        for start in range(0, len(text), piece):
            parser.feed(text[start : start + piece])
            if len(parser.rawdata) > 64 << 10 or time.monotonic() > deadline:
                return False
        if len(parser.rawdata) <= 4 << 10:
            parser.close()
    except Exception:  # the stdlib's parser on outside text: whatever it raises, it failed
        return False
    return True


class _TextOfHtml(HTMLParser):
    """The visible text of a page, a line per block; nothing of `head`, `script` or `style`.

    As a browser shows it: line breaks in the source are spaces, but in `pre`.
    """

    HIDDEN = frozenset({"head", "script", "style", "title"})
    BREAKS = frozenset({"br", "p", "div", "h1", "h2", "h3", "h4", "li", "tr", "pre", "hr", "body"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._enter(tag, +1)

    def handle_endtag(self, tag: str) -> None:
        self._enter(tag, -1)

    def _enter(self, tag: str, step: int) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden + step)
        if tag == "pre":
            self._pre = max(0, self._pre + step)
        if tag in self.BREAKS:
            self.lines.append("")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            data = data.replace("\n", " ")
        first, *more = data.split("\n")
        self.lines[-1] += first
        self.lines += more


def _final(result: T, url: str) -> T:
    if isinstance(result, requests.Response):
        if result.is_redirect:
            result.close()
            raise RedirectRefused(url, result.headers.get("location", "?"))
        raise_if_transient(result)
    return result


def transient_status(status: int) -> bool:
    """The rule: an answer worth another attempt (a server in trouble, or one that asks us to
    slow down); any other status is the server's answer."""
    return status >= 500 or status == 429


def raise_if_transient(response: requests.Response) -> None:
    """`Transient` for a 5xx or a 429, with the server's Retry-After: for an attempt that reads
    the answer itself rather than return it to `with_retries`."""
    if transient_status(response.status_code):
        response.close()
        raise Transient(
            f"HTTP {response.status_code} {response.reason}", response.headers.get("retry-after")
        )


def describe_failure(error: Exception) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    reason = error.args[0] if error.args else error
    # urllib3 nests the useful part: "...: Failed to establish a new connection: [Errno 111] ..."
    text = str(getattr(reason, "reason", reason))
    return "connection failed (" + text.rsplit(": ", 1)[-1].strip(" ')\"") + ")"


# --- the answer's deadline ----------------------------------------------------------------------


class _Until(io.RawIOBase):
    """A socket's reader that waits for each packet no longer than what is left of a deadline:
    the socket's time-out when the answer began, counted from then. The socket's time-out is
    put back after each read (urllib3 sends the next request on it with that time-out)."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._timeout = sock.gettimeout()
        self._deadline = time.monotonic() + (self._timeout or 0.0)

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer: Any) -> int | None:
        if self._timeout is None:  # no time-out asked for: none imposed
            return self._raw.readinto(buffer)
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no whole answer within {self._timeout:g} s")
        self._sock.settimeout(min(left, self._timeout))
        try:
            return self._raw.readinto(buffer)
        finally:
            self._sock.settimeout(self._timeout)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _TimedResponse(http.client.HTTPResponse):
    """http.client's answer, read through `_Until`: made when the request has been sent (the
    upload's body included), so the read time-out bounds the wait for the whole answer. Also
    the proxy's answer to `CONNECT`, within the connect time-out."""

    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        self.fp = io.BufferedReader(_Until(self.fp.detach(), sock))


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _TimedResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _TimedResponse


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _timed(manager: Any) -> Any:
    """`manager`'s pools, with the connections above; a SOCKS proxy's (pools of its own) as is."""
    if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager
