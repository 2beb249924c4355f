"""The files to publish: found in the packages directory, parsed, hashed and checked.

Each file is read once for all its digests (SHA256, BLAKE2-256, MD5); the upload, the log,
the outputs and the summary all use those. The metadata is found where twine's readers find it
and validated as twine does before an upload, so what passes here is what the index will accept;
but it is read with bounds twine does not have, as a distribution is a file from the build, and a
small archive can unpack to gigabytes (`publisher.archives`).
"""

from __future__ import annotations

import hashlib
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.metadata import RawMetadata

from publisher.archives import NotADistribution, read_metadata
from publisher.console import Console, human_size
from publisher.errors import DistributionError, MetadataError
from publisher.values import Digests, Distribution

SDIST_SUFFIXES = (".tar.gz", ".zip")
WHEEL_SUFFIX = ".whl"
ATTESTATION_SUFFIX = ".attestation"  # `<dist>.<kind>.attestation`, as twine and uv pair them
PYPI_LINUX_TAGS = ("linux_armv6l", "linux_armv7l")  # the bare Linux tags PyPI takes (Raspberry Pi)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Found:
    distributions: tuple[Distribution, ...]
    ignored: tuple[str, ...]  # names in the folder that are not distributions


def find_distributions(directory: Path) -> Found:
    """Every wheel and sdist directly in `directory`, sorted by name, with the attestation files
    that go with each; anything else is ignored (but not what is named as a distribution)."""
    paths, others = _distribution_paths(directory)
    attestations: dict[str, list[Path]] = {path.name: [] for path in paths}
    ignored: list[str] = []
    for entry in others:
        owner = _attested_file(entry.name) if entry.is_file() else None
        if owner in attestations:
            attestations[owner].append(entry)
        else:
            ignored.append(entry.name + ("/" if entry.is_dir() else ""))
    if not paths:
        listing = ", ".join(f"`{name}`" for name in ignored) or "nothing"
        raise DistributionError(
            f"`{directory}` holds no wheel (`.whl`) or sdist (`.tar.gz`, `.zip`); it holds "
            f"{listing}. Build them first (for example `python -m build`), or point "
            "`packages-dir` at the folder that holds them."
        )
    return Found(
        tuple(
            replace(read_distribution(path), attestation_files=tuple(attestations[path.name]))
            for path in paths
        ),
        tuple(ignored),
    )


def show_distributions(found: Found, directory: Path, print_hash: bool, console: Console) -> None:
    """The files found, with their sizes (and digests with `print-hash`); what was ignored."""
    if found.ignored:
        console.warning(
            f"Ignored what is not a wheel or an sdist in `{directory}`: "
            + ", ".join(f"`{name}`" for name in found.ignored),
            title="Files ignored in packages-dir",
        )
    dists = found.distributions
    with console.group(f"Distributions in {directory} ({len(dists)})"):
        for dist in dists:
            console.line(f"{dist.filename}  {human_size(dist.size)}")
            if print_hash:
                console.line(f"  SHA256:      {dist.digests.sha256}")
                console.line(f"  MD5:         {dist.digests.md5}")
                console.line(f"  BLAKE2-256:  {dist.digests.blake2_256}")


def _distribution_paths(directory: Path) -> tuple[list[Path], list[Path]]:
    """The entries of `directory` named as distributions, and the others, each sorted.

    What is named as a distribution must be a regular file: a FIFO would block the run, a
    device never end, and a broken link would be a file silently left out of the release.
    """
    try:
        entries = sorted(directory.iterdir())
    except OSError as e:
        raise DistributionError(
            f"`{directory}` cannot be listed: {_cause(e)}. Check that the folder `packages-dir` "
            "names is readable by the user the step runs as.",
            title="Cannot read packages-dir",
        ) from e
    paths: list[Path] = []
    others: list[Path] = []
    for entry in entries:
        if not entry.name.endswith((WHEEL_SUFFIX, *SDIST_SUFFIXES)):
            others.append(entry)
            continue
        problem = _not_a_file(entry)
        if problem:
            raise DistributionError(
                f"`{entry.name}` is named as a distribution, but {problem}. Only regular files "
                "are published: put the file itself in `packages-dir`, or remove this entry.",
                title=f"Cannot read {entry.name}",
            )
        paths.append(entry)
    return paths, others


def _not_a_file(path: Path) -> str:
    """Why `path` is not a regular file one can read; empty if it is one. Never opens it."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if path.is_symlink():
            return f"it is a symbolic link that cannot be followed: {_cause(e)}"
        return f"it cannot be read: {_cause(e)}"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if stat.S_ISFIFO(mode):
        return "it is a named pipe (FIFO)"
    return "it is a socket or a device"


def _cause(error: OSError) -> str:
    return error.strerror or str(error)


def _attested_file(name: str) -> str | None:
    """`foo-1.0.tar.gz` for `foo-1.0.tar.gz.publish.attestation`; None for other names."""
    if not name.endswith(ATTESTATION_SUFFIX):
        return None
    owner, dot, kind = name.removesuffix(ATTESTATION_SUFFIX).rpartition(".")
    return owner if dot and kind and owner else None


def read_distribution(path: Path) -> Distribution:
    from packaging import metadata as pkg_metadata
    from packaging.version import Version
    from twine.wheel import wheel_file_re

    with _reading(path):
        data = read_metadata(path)
    raw, unparsed = pkg_metadata.parse_email(data)

    # As twine: License-File before Metadata-Version 2.4 is a setuptools habit, not an error.
    if Version(raw.get("metadata_version", "0")) < Version("2.4"):
        raw.pop("license_files", None)
        unparsed.pop("license-file", None)
    problems = [f"unrecognized or malformed field `{key}`" for key in unparsed]
    try:
        pkg_metadata.Metadata.from_raw(raw)
    except ExceptionGroup as group:
        problems.extend(sorted(str(e) for e in group.exceptions))
    if problems:
        raise MetadataError(
            f"`{path.name}` has metadata the index would refuse:\n\n"
            + "\n".join(f"- {p}" for p in problems)
            + "\n\nFix the project's metadata (usually in `pyproject.toml`) and rebuild.",
            title=f"Invalid metadata in {path.name}",
        )

    with _reading(path):
        size, digests = _digest(path)
    is_wheel = path.name.endswith(WHEEL_SUFFIX)
    pyversion = "source"
    if is_wheel:
        tags = wheel_file_re.match(path.name)
        pyversion = tags.group("pyver") if tags else "any"  # as twine's `Wheel.py_version`
    return Distribution(
        path=path,
        filetype="bdist_wheel" if is_wheel else "sdist",
        pyversion=pyversion,
        name=raw["name"],
        version=raw["version"],
        size=size,
        digests=digests,
        metadata=raw,
    )


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """What can go wrong reading `path`, as an error that names it and says what to do.

    Archive libraries fail in many ways on a damaged file: their own exceptions, but also
    `EOFError`, zlib's and lzma's errors, an `OSError` with no errno (bz2, gzip),
    `RuntimeError` (an encrypted zip), `NotImplementedError` (an unknown compression) and
    `UnicodeDecodeError` (a zip member name). An `OSError` with an errno is the file system's.
    """
    import lzma
    import zlib

    try:
        yield
    except OSError as e:
        if e.errno is None:
            raise _invalid(path, e) from e
        raise DistributionError(
            f"`{path.name}` cannot be read: {_cause(e)}. Check that the file, as the build left "
            "it, is readable by the user the step runs as.",
            title=f"Cannot read {path.name}",
        ) from e
    except (
        NotADistribution,
        zipfile.BadZipFile,
        tarfile.TarError,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        RuntimeError,
        NotImplementedError,
        UnicodeDecodeError,
    ) as e:
        raise _invalid(path, e) from e


def _invalid(path: Path, error: Exception) -> DistributionError:
    return DistributionError(
        f"`{path.name}` is not a readable distribution: {error}. Rebuild it; a truncated "
        "download or a hand-made archive is the usual cause.",
        title=f"Invalid distribution {path.name}",
    )


def _digest(path: Path) -> tuple[int, Digests]:
    """One pass over the file. hashlib releases the GIL on large updates, so MD5 runs on a second
    core beside SHA256 and BLAKE2: the three cost about what twine's two do."""
    from concurrent.futures import ThreadPoolExecutor

    sha256 = hashlib.sha256()
    blake2 = hashlib.blake2b(digest_size=32)
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as f, ThreadPoolExecutor(max_workers=1) as beside:
        pending = None
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if pending is not None:
                pending.result()
            pending = beside.submit(md5.update, chunk)
            sha256.update(chunk)
            blake2.update(chunk)
        if pending is not None:
            pending.result()
    return size, Digests(sha256.hexdigest(), blake2.hexdigest(), md5.hexdigest())


def check_metadata(distributions: Iterable[Distribution]) -> None:
    """Fail as `twine check --strict` would: the long description must exist and render on PyPI."""
    failures: list[str] = []
    for dist in distributions:
        problems = description_problems(dist.metadata)
        if problems:
            failures.append(f"**`{dist.filename}`**\n" + "\n".join(f"- {p}" for p in problems))
    if failures:
        raise MetadataError(
            "\n\n".join(failures)
            + "\n\nThis is what `twine check --strict` reports. Fix the `readme` of the project "
            "(in `pyproject.toml`) and rebuild, or set `verify-metadata: false` to publish anyway.",
        )


def check_pypi_rules(distributions: Iterable[Distribution]) -> None:
    """Fail on what PyPI and TestPyPI refuse from anyone, before a token is minted for nothing.

    A local version (`1.0.dev3+g1a2b3c`) and a wheel built for one machine (`linux_x86_64`):
    both common slips of a release workflow, and both fine on a private index, so only these two
    indexes are held to them.
    """
    from packaging.version import Version

    failures = []
    for dist in distributions:
        problems = []
        local = Version(dist.version).local
        if local:
            problems.append(
                f"Version `{dist.version}` has a local part (`+{local}`), which PyPI refuses. "
                "setuptools-scm and hatch-vcs add one when the build is not on a tagged commit: "
                "build the release from its tag (for uploads of untagged commits to TestPyPI, "
                'set `local_scheme = "no-local-version"` in their configuration).'
            )
        if dist.filetype == "bdist_wheel":
            platforms = dist.filename.removesuffix(WHEEL_SUFFIX).rsplit("-", 1)[-1].split(".")
            bare = [p for p in platforms if p.startswith("linux_") and p not in PYPI_LINUX_TAGS]
            if bare:
                problems.append(
                    f"The platform tag `{bare[0]}` means a wheel for the machine that built it, "
                    "which PyPI refuses: a wheel for Linux must be `manylinux` or `musllinux`. "
                    "Repair it with `auditwheel repair`, or build the wheels with cibuildwheel."
                )
        if problems:
            failures.append(f"**`{dist.filename}`**\n" + "\n".join(f"- {p}" for p in problems))
    if failures:
        raise DistributionError(
            "\n\n".join(failures) + "\n\nNothing was uploaded. Rebuild and publish again, or set "
            "`verify-metadata: false` to let the index decide.",
            title="PyPI would refuse these files",
        )


def description_problems(metadata: RawMetadata) -> list[str]:
    description = metadata.get("description") or ""
    content_type = metadata.get("description_content_type")
    problems = []
    if content_type is None:
        problems.append(
            "The description's content type is missing (twine would default it to "
            "`text/x-rst`). Set `readme` in `pyproject.toml`, which also sets the type."
        )
        content_type = "text/x-rst"
    if not description or description.rstrip() == "UNKNOWN":
        problems.append("The long description is missing. Set `readme` in `pyproject.toml`.")
        return problems

    mime = content_type.partition(";")[0]
    mime = mime.strip().lower()
    if mime in ("text/plain", "text/markdown"):
        return problems  # these render whatever they hold, as on PyPI
    import io

    from readme_renderer import rst

    stream = io.StringIO()
    if rst.render(description, stream=stream) is None:
        report = stream.getvalue().strip().replace("<string>:", "line ")
        problems.append(
            "The reStructuredText description has markup errors and would not render on "
            f"PyPI:\n\n  ```\n  {report}\n  ```"
        )
    return problems
