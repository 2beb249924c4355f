"""What an upload URL says about its index: name, release page, settings page, simple API."""

from __future__ import annotations

import pytest

from publisher.index import (
    index_name,
    oidc_base,
    publishing_settings_url,
    release_url,
    simple_roots,
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
    ("upload", "simple", "family"),
    [
        (PYPI, "https://pypi.org/simple/", "PyPI"),
        (TESTPYPI, "https://test.pypi.org/simple/", "TestPyPI"),
        (
            "https://acme.example/artifactory/api/pypi/pypi-local",
            "https://acme.example/artifactory/api/pypi/pypi-local/simple/",
            "Artifactory",
        ),
        (
            "https://nexus.acme.example/repository/pypi-internal/",
            "https://nexus.acme.example/repository/pypi-internal/simple/",
            "Nexus",
        ),
        (  # self-hosted, on a port of its own
            "http://nexus.acme.example:8081/repository/pypi-internal/",
            "http://nexus.acme.example:8081/repository/pypi-internal/simple/",
            "Nexus",
        ),
        (
            "https://git.acme.example/api/v4/projects/42/packages/pypi",
            "https://git.acme.example/api/v4/projects/42/packages/pypi/simple/",
            "GitLab",
        ),
        (
            "https://forge.acme.example/api/packages/alice/pypi",
            "https://forge.acme.example/api/packages/alice/pypi/simple/",
            "Gitea or Forgejo",
        ),
        (
            "http://forge.acme.example:3000/api/packages/alice/pypi",
            "http://forge.acme.example:3000/api/packages/alice/pypi/simple/",
            "Gitea or Forgejo",
        ),
        (
            "https://acme-111122223333.d.codeartifact.eu-west-1.amazonaws.com/pypi/internal/",
            "https://acme-111122223333.d.codeartifact.eu-west-1.amazonaws.com/pypi/internal/simple/",
            "AWS CodeArtifact",
        ),
        (
            "https://europe-west1-python.pkg.dev/acme/internal/",
            "https://europe-west1-python.pkg.dev/acme/internal/simple/",
            "Google Artifact Registry",
        ),
        (
            "https://pkgs.dev.azure.com/acme/tools/_packaging/feed/pypi/upload/",
            "https://pkgs.dev.azure.com/acme/tools/_packaging/feed/pypi/simple/",
            "Azure Artifacts",
        ),
        (
            "https://python.cloudsmith.io/acme/internal/",
            "https://dl.cloudsmith.io/basic/acme/internal/python/simple/",
            "Cloudsmith",
        ),
        ("https://push.fury.io/acme/", "https://pypi.fury.io/acme/", "Gemfury"),
        ("https://idx.acme.example/legacy/", "https://idx.acme.example/simple/", "Warehouse"),
        (
            "https://packages.acme.example/acme/-/packages/pypi/simple",
            "https://packages.acme.example/acme/-/packages/pypi/simple/",
            "an index whose upload URL is its simple root",
        ),
    ],
)
def test_an_index_family_is_known_by_its_upload_url(upload: str, simple: str, family: str) -> None:
    roots = simple_roots(upload)

    assert roots.urls == (simple,)
    assert roots.sure
    assert roots.family == family


@pytest.mark.parametrize(
    ("upload", "candidates"),
    [
        # devpi (`<user>/<index>/+simple/`) and pypiserver (`/simple/`) look alike: probed.
        (
            "https://idx.acme.example/alice/dev/",
            (
                "https://idx.acme.example/alice/dev/+simple/",
                "https://idx.acme.example/alice/dev/simple/",
            ),
        ),
        (
            "http://127.0.0.1:8080",
            ("http://127.0.0.1:8080/+simple/", "http://127.0.0.1:8080/simple/"),
        ),
    ],
)
def test_where_no_rule_is_sure_the_candidates_are_probed(
    upload: str, candidates: tuple[str, ...]
) -> None:
    roots = simple_roots(upload)

    assert roots.urls == candidates
    assert not roots.sure


def test_oidc_endpoints_are_on_the_upload_host() -> None:
    assert oidc_base(PYPI) == "https://upload.pypi.org"
    assert oidc_base("http://127.0.0.1:8080/legacy/") == "http://127.0.0.1:8080"
