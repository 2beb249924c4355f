"""Distributions: what is found, how it is read and hashed, and the metadata check."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from publisher.distributions import check_metadata, check_pypi_rules, find_distributions
from publisher.errors import DistributionError, MetadataError
from tests.conftest import build_dists


def test_finds_wheels_and_sdists_and_ignores_the_rest(tmp_path: Path) -> None:
    sdist, wheel = build_dists(tmp_path)
    zipped = tmp_path / "other_pkg-2.0.zip"  # the old sdist format is still accepted
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(
            "other_pkg-2.0/PKG-INFO", "Metadata-Version: 2.1\nName: other-pkg\nVersion: 2.0\n"
        )
        zf.writestr("other_pkg-2.0/setup.py", "")
    (tmp_path / "SHA256SUMS").write_text("")
    (tmp_path / "sub").mkdir()

    found = find_distributions(tmp_path)

    assert [d.filename for d in found.distributions] == [wheel.name, sdist.name, zipped.name]
    assert found.distributions[2].name == "other-pkg"
    assert found.ignored == ("SHA256SUMS", "sub/")
    wheel_dist = found.distributions[0]
    assert (wheel_dist.name, wheel_dist.version) == ("example-pkg", "1.0.0")
    assert (wheel_dist.filetype, wheel_dist.pyversion) == ("bdist_wheel", "py3")
    assert found.distributions[1].filetype == "sdist"
    assert found.distributions[1].pyversion == "source"


def test_digests_and_size_are_those_of_the_file(tmp_path: Path) -> None:
    build_dists(tmp_path)
    for dist in find_distributions(tmp_path).distributions:
        data = dist.path.read_bytes()
        assert dist.size == len(data)
        assert dist.digests.sha256 == hashlib.sha256(data).hexdigest()
        assert dist.digests.md5 == hashlib.md5(data).hexdigest()  # noqa: S324
        assert dist.digests.blake2_256 == hashlib.blake2b(data, digest_size=32).hexdigest()


def test_an_empty_folder_says_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DistributionError, match=r"holds `notes.txt`"):
        find_distributions(tmp_path)


def test_a_broken_archive_is_named(tmp_path: Path) -> None:
    (tmp_path / "example_pkg-1.0.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(DistributionError) as raised:
        find_distributions(tmp_path)
    assert "example_pkg-1.0.0-py3-none-any.whl" in raised.value.title


def test_invalid_metadata_is_refused_before_anything_else(tmp_path: Path) -> None:
    build_dists(tmp_path, version="not a version")
    with pytest.raises(MetadataError, match="not a version"):
        find_distributions(tmp_path)


def test_metadata_check_passes_markdown_and_valid_rst(tmp_path: Path) -> None:
    build_dists(tmp_path / "md")
    build_dists(tmp_path / "rst", content_type="text/x-rst", description="Title\n=====\n\nText.\n")
    check_metadata(find_distributions(tmp_path / "md").distributions)
    check_metadata(find_distributions(tmp_path / "rst").distributions)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"content_type": None}, "content type is missing"),
        ({"description": ""}, "long description is missing"),
        (
            {"content_type": "text/x-rst", "description": "Title\n===\n\n`broken <\n"},
            "would not render",
        ),
    ],
)
def test_metadata_check_fails_as_twine_check_strict(
    tmp_path: Path, kwargs: dict[str, str | None], expected: str
) -> None:
    build_dists(tmp_path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(MetadataError) as raised:
        check_metadata(find_distributions(tmp_path).distributions)
    assert expected in raised.value.markdown
    assert "example_pkg-1.0.0.tar.gz" in raised.value.markdown
    assert "verify-metadata: false" in raised.value.markdown


def test_pypi_rules_refuse_local_versions_and_bare_linux_wheels(tmp_path: Path) -> None:
    _, wheel = build_dists(tmp_path, version="1.2.dev3+g1a2b3c")
    wheel.rename(wheel.with_name("example_pkg-1.2.dev3+g1a2b3c-cp312-cp312-linux_x86_64.whl"))

    with pytest.raises(DistributionError) as raised:
        check_pypi_rules(find_distributions(tmp_path).distributions)

    text = raised.value.markdown
    assert raised.value.title == "PyPI would refuse these files"
    assert "**`example_pkg-1.2.dev3+g1a2b3c.tar.gz`**\n- Version `1.2.dev3+g1a2b3c` has a" in text
    assert text.count("local part (`+g1a2b3c`)") == 2
    assert "The platform tag `linux_x86_64`" in text
    assert "auditwheel repair" in text
    assert "`verify-metadata: false`" in text


@pytest.mark.parametrize(
    "tags",
    [
        "py3-none-any",
        "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp312-abi3-linux_armv7l",
    ],
)
def test_pypi_rules_pass_what_pypi_takes(tmp_path: Path, tags: str) -> None:
    _, wheel = build_dists(tmp_path, version="2.0.post1")
    wheel.rename(wheel.with_name(f"example_pkg-2.0.post1-{tags}.whl"))

    check_pypi_rules(find_distributions(tmp_path).distributions)


def test_attestation_files_go_with_their_distribution(tmp_path: Path) -> None:
    sdist, wheel = build_dists(tmp_path)
    publish = tmp_path / f"{wheel.name}.publish.attestation"
    other = tmp_path / f"{wheel.name}.slsa.attestation"
    stray = tmp_path / "gone-1.0.tar.gz.publish.attestation"  # its distribution is not here
    for path in (publish, other, stray):
        path.write_text("{}")

    found = find_distributions(tmp_path)

    by_name = {d.filename: d for d in found.distributions}
    assert by_name[wheel.name].attestation_files == (publish, other)
    assert by_name[sdist.name].attestation_files == ()
    assert found.ignored == (stray.name,)
