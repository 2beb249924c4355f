"""A distribution's metadata file read out of its archive, within bounds.

The METADATA of a wheel or the PKG-INFO of an sdist, from where twine reads it, but never more
than `METADATA_LIMIT` bytes of it, whatever the archive says of its size, and never more members
or tar headers than the bounds below: a distribution is a file from the build, and a 200 kB
wheel can hold a METADATA of 200 MB, which twine's readers would inflate whole (2.3 GB of memory
to parse it). Whatever is wrong with an archive is raised as the archive library raises it (or
as `NotADistribution`); `publisher.distributions` says which file and what to do.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import IO, cast

from publisher.errors import DistributionError

WHEEL_SUFFIX = ".whl"
MiB = 1 << 20

# The most of a METADATA or PKG-INFO read. Real ones are a few kB, the long description all but
# the whole of them: PyPI sets no limit on it but the file's (Warehouse checks only that Summary
# is 512 characters at most), and long ones run to some hundreds of kB (Azure Artifacts refuses
# those over 317 KiB). 8 MiB passes them all, and parsing that much peaks near 120 MB.
METADATA_LIMIT = 8 * MiB
# Members of an archive looked through for the metadata: the largest distributions hold some
# tens of thousands of files. tarfile keeps each member it reads (about 550 bytes), so this
# bounds an sdist's list to some 110 MB (a zip's is read whole by zipfile, but is in the file).
MAX_MEMBERS = 200_000
# In an sdist, the headers tarfile reads whole into memory (pax headers, GNU long names and
# links), all together, and how many of them may precede one member.
TAR_HEADERS_LIMIT = 16 * MiB
MAX_HEADER_CHAIN = 8


class NotADistribution(Exception):
    """The archive is readable but not a distribution; the text says why, as twine would."""


def read_metadata(path: Path) -> bytes:
    """The METADATA of a wheel or the PKG-INFO of an sdist, from where twine reads it, but never
    more than `METADATA_LIMIT` bytes of it, whatever the archive says of its size: a 200 kB
    wheel can hold a METADATA of 200 MB, which twine's readers would inflate whole (2.3 GB of
    memory to parse it)."""
    if path.name.endswith(WHEEL_SUFFIX):
        return _wheel_metadata(path)
    if path.name.endswith(".zip"):
        return _zip_sdist_metadata(path)
    return _tar_sdist_metadata(path)


_WHEEL_METADATA = re.compile(r"[^/]+\.dist-info/METADATA")


def _wheel_metadata(path: Path) -> bytes:
    """The one `<name>.dist-info/METADATA` at the top of the wheel."""
    with zipfile.ZipFile(path) as archive:
        names = _bounded_names(archive.namelist(), path)
        found = [name for name in names if _WHEEL_METADATA.fullmatch(name)]
        if len(found) > 1:  # the same name twice too: readers differ on which one they take
            listing = ", ".join(f"`{name}`" for name in found)
            raise NotADistribution(f"a wheel has one `.dist-info/METADATA`, this one {listing}")
        if found:
            with archive.open(found[0]) as member:
                data = _bounded_read(member, path, found[0])
            if b"Metadata-Version" in data:
                return data
    raise NotADistribution(
        "No METADATA in archive or METADATA missing 'Metadata-Version': "
        f"{path.name} (searched {','.join(found)})"
    )


def _zip_sdist_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        names = _bounded_names(archive.namelist(), path)
        name = _sdist_root(names, path) + "/PKG-INFO"
        if name in names:
            with archive.open(name) as member:  # the last of that name, as twine reads it
                data = _bounded_read(member, path, name)
            if b"Metadata-Version" in data:
                return data
    raise NotADistribution(
        f"No PKG-INFO in archive or PKG-INFO missing 'Metadata-Version': {path.name}"
    )


def _tar_sdist_metadata(path: Path) -> bytes:
    with _BoundedTarFile.open(path, "r:gz") as archive:
        members = {member.name: member for member in archive.getmembers()}  # the last one wins
        member = members.get(_sdist_root(list(members), path) + "/PKG-INFO")
        if member is not None:
            if not member.isfile():  # a link would read another member, maybe a large one
                raise NotADistribution(f"PKG-INFO is not a regular file: {path.name}")
            if member.size > METADATA_LIMIT:
                raise _too_large(path, member.name)
            data = _bounded_read(cast(IO[bytes], archive.extractfile(member)), path, member.name)
            if b"Metadata-Version" in data:
                return data
    raise NotADistribution(
        f"No PKG-INFO in archive or PKG-INFO missing 'Metadata-Version': {path.name}"
    )


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header checked before tarfile acts on it. tarfile reads a pax header or a GNU long
    name whole into memory, follows a chain of them by recursion, and reads a GNU sparse map for
    as long as the archive says it goes on: each unbounded, and met before any member is read."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:  # tarfile's hook
        if isinstance(archive, _BoundedTarFile):
            archive.account(self)
        return cast(tarfile.TarInfo, super()._proc_member(archive))  # type: ignore[misc]

    def _proc_gnusparse_10(self, *args: object) -> None:  # a map in the data, of any length
        raise NotADistribution("it holds a sparse file, which no build backend writes")


class _BoundedTarFile(tarfile.TarFile):
    """An sdist read with the bounds of `account`, checked on each header as it is read."""

    tarinfo = _BoundedTarInfo
    members_read = 0
    header_bytes = 0
    chain = 0  # extended headers in a row, before the member they describe

    def account(self, header: tarfile.TarInfo) -> None:
        if header.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, *_PAX_TYPES):
            self.header_bytes += header.size
            self.chain += 1
        else:
            self.members_read += 1
            self.chain = 0
        if header.type == tarfile.GNUTYPE_SPARSE:
            raise NotADistribution("it holds a sparse file, which no build backend writes")
        if self.members_read > MAX_MEMBERS:
            raise NotADistribution(f"it holds more than {MAX_MEMBERS:,} members")
        if self.header_bytes > TAR_HEADERS_LIMIT:
            limit = TAR_HEADERS_LIMIT // MiB
            raise NotADistribution(f"its long names and pax headers take more than {limit} MiB")
        if self.chain > MAX_HEADER_CHAIN:
            raise NotADistribution(
                f"more than {MAX_HEADER_CHAIN} pax headers or long names describe one member"
            )


_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


def _sdist_root(names: list[str], path: Path) -> str:
    """The one top-level directory of an sdist, as twine finds it."""
    if not names:
        raise NotADistribution(f"No PKG-INFO in archive: {path.name} is empty")
    try:
        root = os.path.commonpath(names)
    except ValueError:  # absolute and relative names mixed
        root = "/"
    if root in {".", "/", ""}:
        raise NotADistribution(f"Too many top-level members in sdist archive: {path.name}")
    return root.rstrip("/")


def _bounded_names(names: list[str], path: Path) -> list[str]:
    if len(names) > MAX_MEMBERS:
        raise NotADistribution(f"it holds more than {MAX_MEMBERS:,} members")
    return names


def _bounded_read(member: IO[bytes], path: Path, name: str) -> bytes:
    """All of `member` if it is at most `METADATA_LIMIT` bytes. Read as it inflates, so the
    size the archive declares (which can lie) is never trusted, and never more is held."""
    data = member.read(METADATA_LIMIT + 1)
    if len(data) > METADATA_LIMIT:
        raise _too_large(path, name)
    return data


def _too_large(path: Path, name: str) -> DistributionError:
    return DistributionError(
        f"`{path.name}` holds a `{name}` of more than {METADATA_LIMIT // MiB} MiB, the most "
        "this action reads of a distribution's metadata: a real one is a few kB, and even a "
        "long description is far under it. Nothing was uploaded. Rebuild the distribution "
        "(if it is the `readme` that is this long, shorten it).",
        title=f"Metadata too large in {path.name}",
    )
