"""What we know of an index from its upload URL alone: its name, web pages and simple API.

PyPI and TestPyPI are known by their upload hosts; the simple API of other indexes by their
family's URL shape, where it has one (`simple_roots`). No network here: this module is imported
on every path, the fastest included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from publisher.settings import Settings

# upload host -> (name, web host)
KNOWN_INDEXES = {
    "upload.pypi.org": ("PyPI", "https://pypi.org"),
    "test.pypi.org": ("TestPyPI", "https://test.pypi.org"),
}


@dataclass(frozen=True)
class Index:
    """The index this run publishes to, made once from the settings: where uploads go, where
    its simple API is (the user's `index-url`, else derived, else probed; then the root the
    first read found), and the credentials a read may carry, to the upload's host only."""

    repository_url: str
    index_url: str = ""  # the simple root the user gave; empty: derived or probed
    auth: tuple[str, str] | None = field(default=None, repr=False)
    root: str = ""  # the simple root that answered the first read; empty: not known

    @classmethod
    def from_settings(cls, settings: Settings) -> Index:
        auth = (settings.user, settings.password) if settings.password else None
        return cls(settings.repository_url, settings.index_url, auth)

    @property
    def name(self) -> str:
        return index_name(self.repository_url)

    def found(self, root: str) -> Index:
        """This index with the simple root a read found: later reads go there, no probing."""
        return replace(self, root=root) if root else self

    def roots(self) -> tuple[tuple[str, ...], bool, str]:
        """Candidate simple roots, whether the first is sure, and the family for the log."""
        if self.root:
            return (self.root,), True, "found"
        if self.index_url:
            return (self.index_url,), True, "`index-url`"
        roots = simple_roots(self.repository_url)
        return roots.urls, roots.sure, roots.family

    def auth_for(self, url: str) -> tuple[str, str] | None:
        """The host rule: the upload credentials go along only to the upload URL's host."""
        return self.auth if urlsplit(url).netloc == urlsplit(self.repository_url).netloc else None


def index_name(repository_url: str) -> str:
    host = urlsplit(repository_url).hostname or ""
    return KNOWN_INDEXES.get(host, (f"`{urlsplit(repository_url).netloc}`", ""))[0]


def web_url(repository_url: str) -> str:
    """`https://pypi.org` for PyPI, `https://test.pypi.org` for TestPyPI, empty for the rest."""
    return KNOWN_INDEXES.get(urlsplit(repository_url).hostname or "", ("", ""))[1]


def oidc_base(repository_url: str) -> str:
    """The index's trusted-publishing endpoints live on the upload URL's scheme and host."""
    parts = urlsplit(repository_url)
    return f"{parts.scheme}://{parts.netloc}"


def release_url(repository_url: str, name: str, version: str) -> str:
    web = web_url(repository_url)
    return f"{web}/project/{normalize(name)}/{version}/" if web else ""


def publishing_settings_url(repository_url: str, name: str) -> str:
    web = web_url(repository_url)
    return f"{web}/manage/project/{normalize(name)}/settings/publishing/" if web else ""


@dataclass(frozen=True)
class SimpleRoots:
    """Where an index may list a project's files: simple roots (ending in `/`), in the order to
    try them. `sure`: the family is known from the URL, so the first is the one."""

    urls: tuple[str, ...]
    sure: bool
    family: str  # for the log: "PyPI", "devpi", "Artifactory", ... or "unknown"


def simple_roots(repository_url: str) -> SimpleRoots:
    """The simple root of the index `repository_url` uploads to, per index family (the table in
    the README). No single rule maps an upload URL to its simple API: where the URL does not say
    which family the index is, the candidates are probed (`publisher.simple`)."""
    parts = urlsplit(repository_url)
    host = parts.netloc.rpartition("@")[2]  # with its port, as self-hosted indexes often have
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    base = f"{parts.scheme}://{parts.netloc}"
    web = web_url(repository_url)
    if web:
        return SimpleRoots((f"{web}/simple/",), True, index_name(repository_url))
    for family, pattern, simple in _FAMILIES:
        if pattern.search(host + path):
            root = pattern.sub(simple, host + path, count=1)
            scheme = parts.scheme if "://" not in root else ""
            url = f"{scheme}://{root}" if scheme else root
            return SimpleRoots((url,), True, family)
    if path.endswith("/simple/"):
        return SimpleRoots((base + path,), True, "an index whose upload URL is its simple root")
    if path.endswith("/legacy/"):  # Warehouse's upload API, wherever it is deployed
        return SimpleRoots((base + path.removesuffix("legacy/") + "simple/",), True, "Warehouse")
    return SimpleRoots((f"{base}{path}+simple/", f"{base}{path}simple/"), False, "unknown")


# (family, pattern over "host/path/", replacement giving the simple root)
_FAMILIES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (family, re.compile(pattern), simple)
    for family, pattern, simple in (
        ("Artifactory", r"^(.*/api/pypi/[^/]+/).*$", r"\1simple/"),
        ("GitLab", r"^(.*/api/v4/(?:projects|groups)/[^/]+/packages/pypi/).*$", r"\1simple/"),
        ("Gitea or Forgejo", r"^(.*/api/packages/[^/]+/pypi/).*$", r"\1simple/"),
        ("Azure Artifacts", r"^(.*/_packaging/[^/]+/pypi/)upload/.*$", r"\1simple/"),
        (
            "AWS CodeArtifact",
            r"^([^/]+\.codeartifact\.[^/]+\.amazonaws\.com/pypi/[^/]+/).*$",
            r"\1simple/",
        ),
        ("Google Artifact Registry", r"^([^/]+-python\.pkg\.dev/[^/]+/[^/]+/).*$", r"\1simple/"),
        ("Nexus", r"^(.*/repository/[^/]+/).*$", r"\1simple/"),
        (
            "Cloudsmith",
            r"^python\.cloudsmith\.io/([^/]+)/([^/]+)/.*$",
            r"https://dl.cloudsmith.io/basic/\1/\2/python/simple/",
        ),
        ("Gemfury", r"^push\.fury\.io/([^/]+)/.*$", r"https://pypi.fury.io/\1/"),
    )
)


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()
