"""The one HTTP session, and the one place that decides what is retried.

Connection errors, time-outs and 5xx answers (a proxy's HTML maintenance page included) are
retried with exponential backoff and jitter: 5 attempts, about half a minute of waiting in all.
A 4xx is an answer, never retried. A redirect is never followed: credentials go only to the URL
the user configured.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from publisher import __version__
from publisher.errors import IndexRefused, PublishError, RedirectRefused
from publisher.network import raise_if_untrusted

TIMEOUT = (10.0, 60.0)  # connect, read (between two packets, not in all)
UPLOAD_TIMEOUT = (10.0, 300.0)  # the index may take a while to answer after a large file

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    delay: float = 2.0  # before the first retry; doubled before each next one
    max_delay: float = 30.0

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait after failed `attempt` (1-based): the server's word if it gave one."""
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_delay)
        return min(self.delay * 2.0 ** (attempt - 1), self.max_delay) * random.uniform(0.75, 1.25)  # noqa: S311


class _Adapter(HTTPAdapter):
    """No urllib3 retries (ours are below) and a time-out on every request, twine's included."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(request, stream, timeout or self.timeout, verify, cert, proxies)


def make_session(timeout: tuple[float, float] = TIMEOUT) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = (
        f"publisher/{__version__} ({platform.python_implementation()} {platform.python_version()})"
    )
    add_timeouts(session, timeout)
    return session


def add_timeouts(session: requests.Session, timeout: tuple[float, float] = TIMEOUT) -> None:
    """Give a session made elsewhere (sigstore's clients make their own) our time-outs, and no
    retries of urllib3's: a hung service is retried by `with_retries`, not waited for forever."""
    if isinstance(session.get_adapter("https://"), _Adapter):
        return
    adapter = _Adapter(timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    policy: RetryPolicy,
    log: Callable[[str], None],
    **kwargs: Any,
) -> requests.Response:
    """One request with the retry policy; returns the first answer that is not a 5xx."""
    return with_retries(
        lambda _attempt: session.request(method, url, allow_redirects=False, **kwargs),
        url=url,
        what=what,
        policy=policy,
        log=log,
    )


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

    A response is final unless it is a 5xx; a connection error, a time-out or `Transient` asks
    for another attempt, except a certificate that does not verify: `CertificateNotTrusted` at
    once. `attempt` gets its number (1-based) so that a retried upload can tell a file that an
    earlier, unanswered attempt did deliver from a real conflict. When the attempts
    run out, `gave_up(last cause)` is the error (by default, one about the index).
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


def answer_text(response: requests.Response, limit: int = 2000) -> str:
    """What an answer says, fit for a log: an HTML page (Warehouse's errors, a proxy's or a
    firewall's page) reduced to its text, without the lines that repeat the status line (Warehouse
    puts its message in both), at most `limit` characters."""
    body = response.text
    if "html" in response.headers.get("content-type", "") or body.lstrip().startswith("<"):
        parser = _TextOfHtml()
        parser.feed(body)
        parser.close()
        body = "\n".join(parser.lines)
    repeated = {f"{response.status_code} {response.reason}", response.reason}
    lines = [
        line
        for line in (" ".join(part.split()) for part in body.strip().splitlines())
        if line and line not in repeated
    ]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
            raise RedirectRefused(url, result.headers.get("location", "?"))
        raise_if_transient(result)
    return result


def raise_if_transient(response: requests.Response) -> None:
    """`Transient` for a 5xx, with the server's Retry-After: for an attempt that reads the
    answer itself rather than return it to `with_retries`."""
    if response.status_code >= 500:
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
