"""What files the index holds, read as pip reads it: its simple API.

PEP 691 JSON where the index speaks it, PEP 503 HTML otherwise; each file with its sha256 (and
its provenance, where PyPI gives it). Read before uploading (a file already there is not sent
again), in dry runs, to settle an upload the index refused, and to see the release served.

Where the simple API is: `index-url` if given, else the index family's rule (`simple_roots`),
else the candidates probed in order; devpi is recognised by its `X-Devpi-*` headers. A redirect
to another host means "not on this index" (pypiserver and GitLab send unknown projects to
PyPI); 401 and 403 mean "cannot check", never "absent".

Reading only informs, so what cannot be read is "unreadable", never an error: a page that takes
longer than the read time-out in all, is larger than `PAGE_LIMIT`, or is not a simple page
(HTML the parser cannot read, JSON with an entry of the wrong type). The run then sends every
file and lets the index say which it has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import requests

from publisher.errors import CertificateNotTrusted, IndexRefused, PublishError, RedirectRefused
from publisher.http import PAGE_LIMIT, answer_json, decode, feed_html, request
from publisher.index import Index, normalize
from publisher.shared import Shared

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class RemoteFile:
    sha256: str  # empty when the index does not say
    url: str
    provenance: str | None = None  # PyPI's provenance URL; None: none, or the index does not say


@dataclass(frozen=True)
class Listing:
    """What the index holds of our projects, as far as it could be read."""

    files: Mapping[str, RemoteFile] = field(default_factory=dict)  # filename -> file
    readable: bool = True
    root: str = ""  # the simple root that answered (empty: none did, or nothing to read)
    problem: str = ""  # why it could not be read, for the log and the summary


def read_index(
    shared: Shared, index: Index, projects: Iterable[str], *, fresh: bool = False
) -> Listing:
    """Every file of `projects` on the index (at its simple root once an earlier read found it:
    no probing); `fresh`: past any cache (`Cache-Control: no-cache`), to see what was just uploaded.

    A project the index does not know (404) simply has no files yet. Reading only informs, so
    it gives up after one retry.
    """
    policy = replace(shared.policy, attempts=min(shared.policy.attempts, 2))
    shared = replace(shared, policy=policy)
    candidates, sure, family = index.roots()
    found: dict[str, RemoteFile] = {}
    for project in sorted({normalize(p) for p in projects}):
        for candidate in candidates:
            url = urljoin(candidate, f"{project}/")
            page = _read_page(shared, index, url, fresh=fresh)
            if page.kind == "refused":
                return Listing(
                    readable=False,
                    problem=f"`GET {url}` answered HTTP {page.status}: these credentials may "
                    "upload but not read the index",
                )
            if page.kind == "page":
                found.update(page.files)
                candidates, sure = (candidate,), True
                break
            if page.kind == "absent" and (sure or page.devpi):
                candidates, sure = (candidate,), True
                break
            if page.kind == "unreadable" and sure:
                return Listing(readable=False, problem=page.problem)
        else:
            if not sure:
                shared.log(
                    f"No simple page for `{project}` at "
                    + " or ".join(f"`{c}`" for c in candidates)
                    + f" ({family} index): taken as not published yet. Set `index-url` to the "
                    "index's simple root if it is elsewhere."
                )
    return Listing(found, root=candidates[0] if sure else "")


@dataclass(frozen=True)
class _Page:
    kind: str  # "page", "absent", "refused" or "unreadable"
    files: Mapping[str, RemoteFile] = field(default_factory=dict)
    status: int = 0
    devpi: bool = False  # the answer came from devpi: its `+simple` is the root
    problem: str = ""


def _read_page(shared: Shared, index: Index, url: str, *, fresh: bool) -> _Page:
    """One project's page. A page too slow, too large or unparsable is "unreadable", never
    an error: reading only informs."""
    policy = shared.policy
    headers = {"Accept": f"{SIMPLE_JSON}, text/html;q=0.1"}
    if fresh:
        headers["Cache-Control"] = "no-cache"
    for _hop in range(2):  # one redirect on the same host is followed (a missing slash, say)
        try:
            response = request(
                shared,
                "GET",
                url,
                what=f"Reading {url}",
                limit=PAGE_LIMIT,
                gave_up=lambda why: IndexRefused(why, title=f"{why} ({policy.attempts} attempts)"),
                headers=headers,
                auth=index.auth_for(url),
            )
        except RedirectRefused as e:
            try:
                location = _absolute(url, e.location)
            except _NotASimplePage:
                return _Page("unreadable", problem=f"`GET {url}` redirected to what is no URL")
            if urlsplit(location).netloc != urlsplit(url).netloc:
                return _Page("absent")  # sent elsewhere (to PyPI): not on this index
            url = location
            continue
        except CertificateNotTrusted:
            raise  # not "unreadable": nothing else on this network will verify either
        except (PublishError, requests.RequestException) as e:
            return _Page("unreadable", problem=f"`GET {url}` failed: {getattr(e, 'title', e)}")
        devpi = any(name.lower().startswith("x-devpi-") for name in response.headers)
        if response.status_code in (401, 403):
            return _Page("refused", status=response.status_code)
        if response.status_code == 404:
            return _Page("absent", devpi=devpi)
        try:
            return _Page("page", _parse(response, url), devpi=devpi)
        except _NotASimplePage as e:
            return _Page("unreadable", status=response.status_code, problem=f"`GET {url}` {e}")
    return _Page("unreadable", problem=f"`GET {url}` redirected more than once")


class _NotASimplePage(Exception):
    """What the answer is instead, in words that follow "`GET <url>`"."""


def _parse(response: requests.Response, url: str) -> dict[str, RemoteFile]:
    content_type = response.headers.get("content-type", "")
    if response.status_code == 200 and content_type.startswith(SIMPLE_JSON):
        return _parse_json(answer_json(response), url)
    if response.status_code == 200 and "html" in content_type:
        return _parse_html(decode(response.content, response.encoding), url)
    raise _NotASimplePage(f"answered HTTP {response.status_code}, not a simple page")


def _parse_json(page: object, url: str) -> dict[str, RemoteFile]:
    """PEP 691: each file an object with `filename` and `url` strings, `hashes` an object of
    hex digests, `provenance` (PEP 740) a URL or null. A page with any other entry is not
    read at all: a wrong type is a broken (or hostile) index, not a file missing."""
    if page is None:
        raise _NotASimplePage("answered JSON that does not parse")
    files = page.get("files") if isinstance(page, dict) else None
    if not isinstance(files, list):
        raise _NotASimplePage("answered JSON without a list of `files`")
    result = {}
    for number, entry in enumerate(files):
        file = _json_file(entry, url)
        if file is None:
            raise _NotASimplePage(f"answered JSON whose `files[{number}]` is not a PEP 691 file")
        result[file[0]] = file[1]
    return result


def _json_file(entry: object, url: str) -> tuple[str, RemoteFile] | None:
    if not isinstance(entry, dict):
        return None
    filename, href, provenance = entry.get("filename"), entry.get("url"), entry.get("provenance")
    hashes = entry.get("hashes", {})
    sha256 = hashes.get("sha256", "") if isinstance(hashes, dict) else None
    if not (
        isinstance(filename, str)
        and isinstance(href, str)
        and isinstance(sha256, str)
        and (provenance is None or isinstance(provenance, str))
    ):
        return None
    return filename, RemoteFile(_sha256(sha256), _absolute(url, href), provenance)


def _parse_html(text: str, url: str) -> dict[str, RemoteFile]:
    """PEP 503: each file a link, its name the last part of its path (percent-decoded, as pip
    reads it), its sha256 in the fragment."""
    parser = _Links()
    if not feed_html(parser, text):
        raise _NotASimplePage("answered HTML that cannot be parsed")
    result = {}
    for href, provenance in parser.links:
        link, _, fragment = _absolute(url, href).partition("#")
        filename = unquote(urlsplit(link).path.rsplit("/", 1)[-1])
        sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
        result[filename] = RemoteFile(_sha256(sha256), link, provenance)
    return result


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _sha256(value: str) -> str:
    if value and not _HEX64.fullmatch(value):
        raise _NotASimplePage("lists a file whose sha256 is not 64 hexadecimal digits")
    return value.lower()


def _absolute(base: str, href: str) -> str:
    """`urljoin`, which raises on some text (`http://[::1`)."""
    try:
        return urljoin(base, href)
    except ValueError:
        raise _NotASimplePage("lists a link that is not a URL") from None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            attributes = dict(attrs)
            href = attributes.get("href")
            if href:
                self.links.append((href, attributes.get("data-provenance")))
