"""publisher/simple.py against a PEP 503 index on 127.0.0.1 (the e2e tests read real ones)."""

from __future__ import annotations

from typing import Any

from publisher.http import RetryPolicy, make_session
from publisher.simple import Index, RemoteFile, read_index
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


def test_file_names_in_html_links_are_read_as_pip_reads_them() -> None:
    index = HtmlIndex()
    try:
        with make_session() as session:
            listing = read_index(
                session,
                Index(f"{index.url}/upload/", f"{index.url}/simple/"),
                ["example-pkg"],
                policy=RetryPolicy(delay=0),
                log=lambda line: None,
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
