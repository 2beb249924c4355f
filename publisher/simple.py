"""What files the index holds, read as pip reads it: its simple API.

PEP 691 JSON where the index speaks it, PEP 503 HTML otherwise; each file with its sha256 (and
its provenance, where PyPI gives it). Read before uploading (a file already there is not sent
again), in dry runs, to settle an upload the index refused, and to see the release served.

Where the simple API is: `index-url` if given, else the index family's rule (`simple_roots`),
else the candidates probed in order; devpi is recognised by its `X-Devpi-*` headers. A redirect
to another host means "not on this index" (pypiserver and GitLab send unknown projects to
PyPI); 401 and 403 mean "cannot check", never "absent".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import requests

from publisher.errors import PublishError, RedirectRefused
from publisher.http import RetryPolicy, request
from publisher.index import normalize, simple_roots
from publisher.network import CertificateNotTrusted

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class RemoteFile:
    sha256: str  # empty when the index does not say
    url: str
    provenance: str | None = None  # PyPI's provenance URL; None: none, or the index does not say


@dataclass(frozen=True)
class Index:
    """Where and how to read the index: plain values, made once from the settings."""

    repository_url: str
    index_url: str = ""  # the simple root the user gave; empty: derived or probed
    auth: tuple[str, str] | None = None  # the upload credentials, for the upload's host only

    def roots(self) -> tuple[tuple[str, ...], bool, str]:
        """Candidate simple roots, whether the first is sure, and the family for the log."""
        if self.index_url:
            return (self.index_url,), True, "`index-url`"
        roots = simple_roots(self.repository_url)
        return roots.urls, roots.sure, roots.family


@dataclass(frozen=True)
class Listing:
    """What the index holds of our projects, as far as it could be read."""

    files: Mapping[str, RemoteFile] = field(default_factory=dict)  # filename -> file
    readable: bool = True
    root: str = ""  # the simple root that answered (empty: none did, or nothing to read)
    problem: str = ""  # why it could not be read, for the log and the summary


def read_index(
    session: requests.Session,
    index: Index,
    projects: Iterable[str],
    *,
    policy: RetryPolicy,
    log: Callable[[str], None],
    root: str = "",
    fresh: bool = False,
) -> Listing:
    """Every file of `projects` on the index. `root`: a simple root found before (no probing);
    `fresh`: past any cache (`Cache-Control: no-cache`), to see what was just uploaded.

    A project the index does not know (404) simply has no files yet. Reading only informs, so
    it gives up after one retry.
    """
    policy = replace(policy, attempts=min(policy.attempts, 2))
    candidates, sure, family = index.roots()
    if root:
        candidates, sure = (root,), True
    found: dict[str, RemoteFile] = {}
    for project in sorted({normalize(p) for p in projects}):
        for candidate in candidates:
            url = urljoin(candidate, f"{project}/")
            page = _read_page(session, index, url, policy=policy, log=log, fresh=fresh)
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
                log(
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


def _read_page(
    session: requests.Session,
    index: Index,
    url: str,
    *,
    policy: RetryPolicy,
    log: Callable[[str], None],
    fresh: bool,
) -> _Page:
    headers = {"Accept": f"{SIMPLE_JSON}, text/html;q=0.1"}
    if fresh:
        headers["Cache-Control"] = "no-cache"
    for _hop in range(2):  # one redirect on the same host is followed (a missing slash, say)
        same_host = urlsplit(url).netloc == urlsplit(index.repository_url).netloc
        try:
            response = request(
                session,
                "GET",
                url,
                what=f"Reading {url}",
                policy=policy,
                log=log,
                headers=headers,
                auth=index.auth if same_host else None,
            )
        except RedirectRefused as e:
            if urlsplit(e.location).netloc not in ("", urlsplit(url).netloc):
                return _Page("absent")  # sent elsewhere (to PyPI): not on this index
            url = urljoin(url, e.location)
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
        files = _parse(response, url) if response.status_code == 200 else None
        if files is None:
            return _Page(
                "unreadable",
                status=response.status_code,
                problem=f"`GET {url}` answered HTTP {response.status_code}, not a simple page",
            )
        return _Page("page", files, devpi=devpi)
    return _Page("unreadable", problem=f"`GET {url}` redirected more than once")


def _parse(response: requests.Response, url: str) -> dict[str, RemoteFile] | None:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(SIMPLE_JSON):
        try:
            files = response.json()["files"]
            return {
                f["filename"]: RemoteFile(
                    f.get("hashes", {}).get("sha256", ""),
                    urljoin(url, f["url"]),
                    f.get("provenance"),
                )
                for f in files
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    if "html" in content_type:
        parser = _Links()
        parser.feed(response.text)
        result = {}
        for href, provenance in parser.links:
            link, _, fragment = urljoin(url, href).partition("#")
            filename = unquote(urlsplit(link).path.rsplit("/", 1)[-1])  # as pip reads it
            sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
            result[filename] = RemoteFile(sha256, link, provenance)
        return result
    return None


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
