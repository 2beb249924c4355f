"""Distributions: what is found, how it is read and hashed, and the metadata check."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from publisher import archives
from publisher.distributions import check_metadata, check_pypi_rules, find_distributions
from publisher.errors import DistributionError, MetadataError
from tests.conftest import build_dists

T = TypeVar("T")


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


# Hostile and unreadable files: each is an error that names the file, never a traceback, and
# the metadata is never read past its bound.

METADATA = (
    b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\nDescription-Content-Type: text/plain\n\n"
)


def write_bomb_wheel(path: Path, size: int) -> None:
    """A wheel whose METADATA inflates to `size` bytes (a thousandth of it on disk), written
    without ever holding it whole."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb/__init__.py", b"")
        with zf.open("bomb-1.0.dist-info/METADATA", "w", force_zip64=True) as f:
            f.write(METADATA)
            for start in range(0, size - len(METADATA), 1 << 20):
                f.write(b"a" * min(1 << 20, size - len(METADATA) - start))


def write_sdist(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> None:
    """A .tar.gz of `members`: (name, data) pairs, or headers given as they are (links...)."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
                continue
            info = tarfile.TarInfo(member[0])
            info.size = len(member[1])
            tf.addfile(info, io.BytesIO(member[1]))


def write_zip_sdist(path: Path, size: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb-1.0/PKG-INFO", METADATA + b"a" * (size - len(METADATA)))
        zf.writestr("bomb-1.0/setup.py", b"")


@pytest.mark.parametrize("kind", ["wheel", "tar.gz", "zip"])
def test_metadata_past_the_bound_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setattr(archives, "METADATA_LIMIT", 4096)
    name = {"wheel": "bomb-1.0-py3-none-any.whl", "tar.gz": "bomb-1.0.tar.gz"}.get(kind, "b.zip")
    path = tmp_path / name
    big = METADATA + b"a" * 4096
    if kind == "wheel":
        write_bomb_wheel(path, len(big))
    elif kind == "tar.gz":
        write_sdist(path, [("bomb-1.0/PKG-INFO", big), ("bomb-1.0/setup.py", b"")])
    else:
        write_zip_sdist(path, len(big))

    with pytest.raises(DistributionError) as raised:
        find_distributions(tmp_path)

    assert raised.value.title == f"Metadata too large in {name}"
    assert f"`{name}` holds a `" in raised.value.markdown
    assert "Nothing was uploaded" in raised.value.markdown


def test_metadata_at_the_bound_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "METADATA_LIMIT", 4096)
    write_bomb_wheel(tmp_path / "bomb-1.0-py3-none-any.whl", 4096)

    [dist] = find_distributions(tmp_path).distributions

    assert (dist.name, len(dist.metadata["description"])) == ("bomb", 4096 - len(METADATA))


def test_a_real_bomb_is_refused_with_the_bound_in_the_message(tmp_path: Path) -> None:
    """200 kB on disk, 200 MB inflated: refused after reading 8 MiB of it."""
    write_bomb_wheel(tmp_path / "bomb-1.0-py3-none-any.whl", 200 << 20)
    assert (tmp_path / "bomb-1.0-py3-none-any.whl").stat().st_size < 300_000

    with pytest.raises(DistributionError, match=r"dist-info/METADATA` of more than 8 MiB"):
        find_distributions(tmp_path)


def test_a_wheel_with_two_metadata_files_is_refused(tmp_path: Path) -> None:
    """Readers differ on which one they take: twine the first, others the last."""
    path = tmp_path / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bomb-1.0.dist-info/METADATA", METADATA)
        zf.writestr("other-6.6.dist-info/METADATA", METADATA.replace(b"bomb", b"other"))

    with pytest.raises(DistributionError) as raised:
        find_distributions(tmp_path)

    assert raised.value.title == "Invalid distribution bomb-1.0-py3-none-any.whl"
    assert "`bomb-1.0.dist-info/METADATA`, `other-6.6.dist-info/METADATA`" in raised.value.markdown


def odd_member(kind: str) -> tarfile.TarInfo:
    """A header tarfile would act on before any member is read, or a link in place of PKG-INFO."""
    if kind == "huge-long-name":  # read whole into memory, as GNU tar writes names past 100 bytes
        return tarfile.TarInfo("bomb-1.0/" + "n" * (17 << 20))
    info = tarfile.TarInfo("bomb-1.0/PKG-INFO" if kind.endswith("link") else "bomb-1.0/sparse")
    info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}.get(
        kind, tarfile.GNUTYPE_SPARSE
    )
    info.linkname = "bomb-1.0/big"
    return info


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("huge-long-name", "long names and pax headers take more than 16 MiB"),
        ("sparse", "sparse file"),
        ("symlink", "PKG-INFO is not a regular file"),  # twine's rule, kept
        ("hardlink", "PKG-INFO is not a regular file"),
    ],
)
def test_tar_headers_are_bounded_before_tarfile_reads_them(
    tmp_path: Path, kind: str, expected: str
) -> None:
    write_sdist(
        tmp_path / "bomb-1.0.tar.gz",
        [("bomb-1.0/big", METADATA + b"a" * 100_000), odd_member(kind)],
    )

    with pytest.raises(DistributionError, match=expected) as raised:
        find_distributions(tmp_path)

    assert raised.value.title == "Invalid distribution bomb-1.0.tar.gz"


def test_a_chain_of_pax_headers_is_refused(tmp_path: Path) -> None:
    """tarfile follows headers that describe the next one by recursion: 2000 in a row would be a
    RecursionError."""
    import gzip

    record = b"19 comment=chained\n"
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, len(record)
    chain = (pax.tobuf(tarfile.USTAR_FORMAT) + record.ljust(tarfile.BLOCKSIZE, b"\0")) * 2000
    members = [
        tar_member("bomb-1.0/PKG-INFO", METADATA),
        chain + tar_member("bomb-1.0/chained", b""),
        b"\0" * 2 * tarfile.BLOCKSIZE,
    ]
    (tmp_path / "bomb-1.0.tar.gz").write_bytes(gzip.compress(b"".join(members)))

    with pytest.raises(DistributionError, match="more than 8 pax headers or long names describe"):
        find_distributions(tmp_path)


def tar_member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    padding = -len(data) % tarfile.BLOCKSIZE
    return info.tobuf(tarfile.USTAR_FORMAT) + data + b"\0" * padding


def test_members_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "MAX_MEMBERS", 10)
    members = [(f"bomb-1.0/m{i}", b"") for i in range(10)]
    write_sdist(tmp_path / "bomb-1.0.tar.gz", [("bomb-1.0/PKG-INFO", METADATA), *members])
    with zipfile.ZipFile(tmp_path / "bomb-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("bomb-1.0.dist-info/METADATA", METADATA)
        for name, data in members:
            zf.writestr(name, data)

    with pytest.raises(DistributionError, match="holds more than 10 members") as raised:
        find_distributions(tmp_path)

    assert "bomb-1.0-py3-none-any.whl" in raised.value.title  # the first in name order


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        ("e-1.0.tar.gz", lambda p: write_sdist(p, []), "No PKG-INFO in archive"),
        (
            "e-1.0.tar.gz",
            lambda p: write_sdist(p, [("e-1.0/PKG-INFO", METADATA), ("/etc/x", b"")]),
            "Too many top-level members",
        ),
        ("e-1.0-py3-none-any.whl", lambda p: write_odd_wheel(p, flag_bits=0x1), "encrypted"),
        ("e-1.0-py3-none-any.whl", lambda p: write_odd_wheel(p, compress_type=99), "method"),
    ],
    ids=["empty-sdist", "absolute-member", "encrypted-wheel", "unknown-compression"],
)
def test_a_damaged_archive_is_named_not_a_traceback(
    tmp_path: Path, name: str, write: Callable[[Path], None], expected: str
) -> None:
    write(tmp_path / name)

    with pytest.raises(DistributionError, match=expected) as raised:
        find_distributions(tmp_path)

    assert raised.value.title == f"Invalid distribution {name}"


def write_odd_wheel(path: Path, **central_directory: int) -> None:
    """A wheel whose METADATA the central directory says is encrypted, or compressed with a method
    zipfile does not know: it raises RuntimeError or NotImplementedError to read it."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("e-1.0.dist-info/METADATA", METADATA)
        for name, value in central_directory.items():
            setattr(zf.getinfo("e-1.0.dist-info/METADATA"), name, value)


@pytest.mark.parametrize("kind", ["fifo", "directory", "dangling-link", "link-loop"])
def test_what_is_named_as_a_distribution_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    """Never opened: a FIFO would block the run. Not ignored: a file would be left out."""
    build_dists(tmp_path)
    path = tmp_path / "other_pkg-1.0.tar.gz"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "dangling-link":
        path.symlink_to(tmp_path / "gone.tar.gz")
    else:
        path.symlink_to(path)

    with pytest.raises(DistributionError) as raised:
        find_distributions(tmp_path)

    assert raised.value.title == "Cannot read other_pkg-1.0.tar.gz"
    assert "`other_pkg-1.0.tar.gz` is named as a distribution, but it" in raised.value.markdown
    reason = {"fifo": "named pipe", "directory": "is a directory", "dangling-link": "No such file"}
    assert reason.get(kind, "symbolic link") in raised.value.markdown


def drop_read_override() -> None:
    """Take CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH away from the calling thread (Linux keeps
    capabilities per thread), so that mode 000 stops root's reads as it stops anyone's."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~0b110  # CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2)
    data[0].permitted &= ~0b110
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def without_read_override(function: Callable[[], T]) -> T:
    """`function()` run in a thread of its own that mode bits bind, even as root."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            drop_read_override()
            outcome.append(function())
        except BaseException as e:
            failure.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def make_unreadable(path: Path) -> None:
    """Mode 000, and skip the test where that does not stop a read (no capabilities to drop)."""
    path.chmod(0)
    try:
        without_read_override(lambda: os.close(os.open(path, os.O_RDONLY)))
    except PermissionError:
        return
    except (OSError, AttributeError) as e:  # not Linux, or capabilities cannot be changed
        pytest.skip(f"cannot drop the capabilities that bypass mode bits: {e}")
    pytest.skip("mode 000 does not stop reads here")


def test_a_file_the_process_cannot_read_is_named_with_the_cause(tmp_path: Path) -> None:
    sdist, _ = build_dists(tmp_path)
    make_unreadable(sdist)

    with pytest.raises(DistributionError) as raised:
        without_read_override(lambda: find_distributions(tmp_path))

    assert raised.value.title == "Cannot read example_pkg-1.0.0.tar.gz"
    assert "`example_pkg-1.0.0.tar.gz` cannot be read: Permission denied." in raised.value.markdown


def test_a_folder_the_process_cannot_list_is_named_with_the_cause(tmp_path: Path) -> None:
    build_dists(tmp_path / "dist")
    make_unreadable(tmp_path / "dist")

    try:
        with pytest.raises(DistributionError) as raised:
            without_read_override(lambda: find_distributions(tmp_path / "dist"))
    finally:
        (tmp_path / "dist").chmod(0o755)  # for pytest to clean it up

    assert raised.value.title == "Cannot read packages-dir"
    assert f"`{tmp_path / 'dist'}` cannot be listed: Permission denied." in raised.value.markdown


def test_an_input_output_error_while_hashing_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of the file system after the metadata was read (a disk, a network share)."""
    build_dists(tmp_path)
    real_open = Path.open

    def failing_open(self: Path, *args: object, **kwargs: object) -> object:
        if self.name.endswith(".whl"):
            raise OSError(5, "Input/output error")
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", failing_open)

    with pytest.raises(DistributionError, match="cannot be read: Input/output error") as raised:
        find_distributions(tmp_path)

    assert raised.value.title == "Cannot read example_pkg-1.0.0-py3-none-any.whl"
