"""What files the index already holds, read as pip reads it: its simple API.

PEP 691 JSON where the index speaks it, PEP 503 HTML otherwise; each file with its sha256 where
the index gives one. Used before uploading with skip-existing, in dry runs, and to tell a retried
upload that landed from a real conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

from publisher.errors import PublishError
from publisher.http import RetryPolicy, request
from publisher.index import normalize, simple_url

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class RemoteFile:
    sha256: str  # empty when the index does not say
    url: str


def existing_files(
    session: requests.Session,
    repository_url: str,
    projects: Iterable[str],
    *,
    policy: RetryPolicy,
    log: Callable[[str], None],
) -> dict[str, RemoteFile] | None:
    """Filename -> file for every file of `projects` on the index; None if it cannot be read.

    A project the index does not know (404) simply has no files yet. This only informs (an
    upload finds out anyway), so it gives up after one retry.
    """
    policy = replace(policy, attempts=min(policy.attempts, 2))
    found: dict[str, RemoteFile] = {}
    for project in sorted({normalize(p) for p in projects}):
        url = urljoin(simple_url(repository_url), f"{project}/")
        try:
            response = request(
                session,
                "GET",
                url,
                what=f"Reading {url}",
                policy=policy,
                log=log,
                headers={"Accept": f"{SIMPLE_JSON}, text/html;q=0.1"},
            )
        except (PublishError, requests.RequestException):  # best effort: an upload finds out
            return None
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            return None
        files = _parse(response, url)
        if files is None:
            return None
        found.update(files)
    return found


def _parse(response: requests.Response, url: str) -> dict[str, RemoteFile] | None:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(SIMPLE_JSON):
        try:
            files = response.json()["files"]
            return {
                f["filename"]: RemoteFile(
                    f.get("hashes", {}).get("sha256", ""), urljoin(url, f["url"])
                )
                for f in files
            }
        except (ValueError, KeyError, TypeError):
            return None
    if "html" in content_type:
        parser = _Links()
        parser.feed(response.text)
        result = {}
        for href in parser.hrefs:
            link, _, fragment = urljoin(url, href).partition("#")
            filename = urlsplit(link).path.rsplit("/", 1)[-1]
            sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
            result[filename] = RemoteFile(sha256, link)
        return result
    return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)
