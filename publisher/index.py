"""What we know of an index from its upload URL alone: its name, web pages and simple API.

PyPI and TestPyPI are known by their upload hosts. For any other index the simple API is taken
to be next to the upload URL (`.../legacy/` -> `.../simple/`, pypiserver's `/` -> `/simple/`).
No network here: this module is imported on every path, the fastest included.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# upload host -> (name, web host)
KNOWN_INDEXES = {
    "upload.pypi.org": ("PyPI", "https://pypi.org"),
    "test.pypi.org": ("TestPyPI", "https://test.pypi.org"),
}


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


def simple_url(repository_url: str) -> str:
    web = web_url(repository_url)
    if web:
        return f"{web}/simple/"
    base = repository_url if repository_url.endswith("/") else repository_url + "/"
    if base.endswith("/legacy/"):
        return base[: -len("legacy/")] + "simple/"
    return base + "simple/"


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()
