"""publisher/simple.py against a PEP 503 index on 127.0.0.1 (the e2e tests read real ones)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from publisher.cancel import Cancellation
from publisher.console import Console
from publisher.http import RetryPolicy, make_session
from publisher.index import Index
from publisher.shared import Shared
from publisher.simple import SIMPLE_JSON, Listing, RemoteFile, read_index
from tests.servers import StandIn

SHA256 = "ab" * 32


class HtmlIndex(StandIn):
    """A simple API in HTML only, which percent-encodes its file names in the links, as
    Artifactory and Nexus do with the `+` of a local version."""

    def handle(self, method: str, path: str, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        if path != "/simple/example-pkg/":
            return 404, {}, b"not found"
        links = (
            f'<a href="../../files/example_pkg-1.0%2Bcorp.1-py3-none-any.whl#sha256={SHA256}">'
            "example_pkg-1.0+corp.1-py3-none-any.whl</a>\n"
            f'<a href="../../files/example_pkg-1.0.tar.gz#sha256={SHA256}" '
            'data-provenance="https://example.test/provenance">example_pkg-1.0.tar.gz</a>\n'
        )
        return 200, {"content-type": "text/html"}, links.encode()


def shared(session: requests.Session, policy: RetryPolicy) -> Shared:
    return Shared(Console(io.StringIO(), in_actions=False), policy, session, Cancellation())


def test_file_names_in_html_links_are_read_as_pip_reads_them() -> None:
    index = HtmlIndex()
    try:
        with make_session() as session:
            listing = read_index(
                shared(session, RetryPolicy(delay=0)),
                Index(f"{index.url}/upload/", f"{index.url}/simple/"),
                ["example-pkg"],
            )
    finally:
        index.close()

    assert listing.files == {
        "example_pkg-1.0+corp.1-py3-none-any.whl": RemoteFile(
            SHA256, f"{index.url}/files/example_pkg-1.0%2Bcorp.1-py3-none-any.whl"
        ),
        "example_pkg-1.0.tar.gz": RemoteFile(
            SHA256, f"{index.url}/files/example_pkg-1.0.tar.gz", "https://example.test/provenance"
        ),
    }
    assert listing.root == f"{index.url}/simple/"


class Pages(StandIn):
    """A simple API whose one project's page is whatever a test puts in `page`."""

    def __init__(self) -> None:
        super().__init__()
        self.page: tuple[int, dict[str, str], bytes] = (404, {}, b"")

    def handle(self, method: str, path: str, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        return self.page if path.startswith("/simple/example-pkg/") else (404, {}, b"")


@pytest.fixture
def pages() -> Iterator[Pages]:
    server = Pages()
    yield server
    server.close()


def read(pages: Pages, timeout: tuple[float, float] | None = None) -> Listing:
    with make_session(timeout) as session:
        return read_index(
            shared(session, RetryPolicy(attempts=2, delay=0)),
            Index(f"{pages.url}/upload/", f"{pages.url}/simple/"),
            ["example-pkg"],
        )


def json_page(*files: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"content-type": SIMPLE_JSON}, json.dumps({"files": list(files)}).encode()


FILE = {"filename": "example_pkg-1.0.tar.gz", "url": "/f/example_pkg-1.0.tar.gz"}


def test_a_page_that_is_not_a_simple_page_is_unreadable_with_the_reason(pages: Pages) -> None:
    html = {"content-type": "text/html"}
    cases = {
        "HTML that cannot be parsed": (200, html, b"<html><![note[ x ]]><a href='x'>x</a>"),
        "a link that is not a URL": (200, html, b"<a href='http://[::1/x.tar.gz'>x</a>"),
        "sha256 is not 64 hexadecimal digits": (200, html, b"<a href='x.tar.gz#sha256=zz'>"),
        "JSON that does not parse": (200, {"content-type": SIMPLE_JSON}, b"[" * 100_000),
        "JSON without a list of `files`": (*json_page()[:2], b'{"files": {"a": 1}}'),
        "`files[1]` is not a PEP 691 file": json_page(FILE, FILE | {"url": 5}),
        "`files[0]` is not a PEP 691 file": json_page(FILE | {"hashes": ["ab" * 32]}),
    }
    more = [
        FILE | {"filename": 7},
        FILE | {"hashes": {"sha256": ["ab" * 32]}},
        FILE | {"provenance": 1},
        "example_pkg-1.0.tar.gz",
        FILE | {"url": "http://[::1/x"},
        FILE | {"hashes": {"sha256": "no"}},
    ]
    for page in [*cases.values(), *(json_page(entry) for entry in more)]:
        pages.page = page
        listing = read(pages)
        assert not listing.readable, page
        assert listing.problem.startswith(f"`GET {pages.url}/simple/example-pkg/` "), page
    for problem, page in cases.items():
        pages.page = page
        assert problem in read(pages).problem


def test_a_page_in_a_charset_no_codec_reads_is_read_as_utf8(pages: Pages) -> None:
    link = f'<a href="/f/example_pkg-1.0.tar.gz#sha256={SHA256.upper()}">x</a>'
    pages.page = (200, {"content-type": "text/html; charset=undefined"}, link.encode())
    listing = read(pages)
    assert listing.readable, listing.problem
    assert listing.files["example_pkg-1.0.tar.gz"].sha256 == SHA256


def test_a_page_larger_than_its_limit_is_unreadable_and_not_read_again(
    pages: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("publisher.simple.PAGE_LIMIT", 100_000)
    pages.page = json_page(*[FILE | {"filename": f"f{n}"} for n in range(2000)])
    listing = read(pages)
    assert not listing.readable
    assert "the answer is larger than 100000 bytes" in listing.problem
    assert pages.count("GET", "/simple/") == 1


def test_a_page_sent_a_byte_at_a_time_is_given_up_at_the_read_timeout(pages: Pages) -> None:
    def drip(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        end = time.monotonic() + 8
        while time.monotonic() < end:
            handler.wfile.write(b"<")
            handler.wfile.flush()
            time.sleep(0.05)

    pages.takeover["/simple/"] = drip
    started = time.monotonic()
    listing = read(pages, timeout=(1.0, 0.5))
    assert time.monotonic() - started < 2  # two attempts of 0.5 s
    assert not listing.readable
    assert listing.problem == (
        f"`GET {pages.url}/simple/example-pkg/` failed: timed out (2 attempts)"
    )


def test_a_redirect_to_what_is_no_url_is_unreadable(pages: Pages) -> None:
    pages.page = (302, {"location": "http://[::1/simple/example-pkg/"}, b"")
    listing = read(pages)
    assert not listing.readable
    assert listing.problem.endswith("redirected to what is no URL")
