"""What an upload URL says about its index: name, release page, settings page, simple API."""

from __future__ import annotations

import pytest

from publisher.index import (
    index_name,
    oidc_base,
    publishing_settings_url,
    release_url,
    simple_url,
)

PYPI = "https://upload.pypi.org/legacy/"
TESTPYPI = "https://test.pypi.org/legacy/"


def test_pypi_and_testpypi_pages() -> None:
    assert index_name(PYPI) == "PyPI"
    assert index_name(TESTPYPI) == "TestPyPI"
    assert release_url(PYPI, "My_Package", "1.0") == "https://pypi.org/project/my-package/1.0/"
    assert release_url(TESTPYPI, "pkg", "2.0rc1") == "https://test.pypi.org/project/pkg/2.0rc1/"
    assert (
        publishing_settings_url(PYPI, "My.Package")
        == "https://pypi.org/manage/project/my-package/settings/publishing/"
    )


def test_other_indexes_have_no_release_page() -> None:
    assert release_url("https://pypi.example.com/", "pkg", "1") == ""
    assert publishing_settings_url("https://pypi.example.com/", "pkg") == ""
    assert index_name("https://pypi.example.com:8443/upload/") == "`pypi.example.com:8443`"


@pytest.mark.parametrize(
    ("upload", "simple"),
    [
        (PYPI, "https://pypi.org/simple/"),
        (TESTPYPI, "https://test.pypi.org/simple/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/simple/"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/simple/"),
        ("https://idx.example.com/legacy/", "https://idx.example.com/simple/"),
    ],
)
def test_simple_api_is_found_next_to_the_upload_url(upload: str, simple: str) -> None:
    assert simple_url(upload) == simple


def test_oidc_endpoints_are_on_the_upload_host() -> None:
    assert oidc_base(PYPI) == "https://upload.pypi.org"
    assert oidc_base("http://127.0.0.1:8080/legacy/") == "http://127.0.0.1:8080"
