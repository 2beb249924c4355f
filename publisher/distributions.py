"""The files to publish: found in the packages directory, parsed, hashed and checked.

Each file is read once for all its digests (SHA256, BLAKE2-256, MD5); the upload, the log,
the outputs and the summary all use those. The metadata is read with twine's own readers and
validated as twine does before an upload, so what passes here is what the index will accept.
"""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.metadata import RawMetadata

from publisher.errors import DistributionError, MetadataError

SDIST_SUFFIXES = (".tar.gz", ".zip")
WHEEL_SUFFIX = ".whl"
ATTESTATION_SUFFIX = ".attestation"  # `<dist>.<kind>.attestation`, as twine and uv pair them
PYPI_LINUX_TAGS = ("linux_armv6l", "linux_armv7l")  # the bare Linux tags PyPI takes (Raspberry Pi)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Digests:
    sha256: str
    blake2_256: str
    md5: str


@dataclass(frozen=True)
class Distribution:
    path: Path
    filetype: str  # "bdist_wheel" or "sdist", as the upload form names them
    pyversion: str  # "source" for an sdist, the wheel's python tag otherwise
    name: str
    version: str
    size: int
    digests: Digests
    metadata: RawMetadata = field(compare=False, repr=False)
    # PEP 740 attestations beside the file (`<filename>.<kind>.attestation`), sorted by name
    attestation_files: tuple[Path, ...] = ()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Found:
    distributions: tuple[Distribution, ...]
    ignored: tuple[str, ...]  # names in the folder that are not distributions


def find_distributions(directory: Path) -> Found:
    """Every wheel and sdist directly in `directory`, sorted by name, with the attestation files
    that go with each; anything else is ignored."""
    paths: list[Path] = []
    others: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_file() and entry.name.endswith((WHEEL_SUFFIX, *SDIST_SUFFIXES)):
            paths.append(entry)
        else:
            others.append(entry)
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


def _attested_file(name: str) -> str | None:
    """`foo-1.0.tar.gz` for `foo-1.0.tar.gz.publish.attestation`; None for other names."""
    if not name.endswith(ATTESTATION_SUFFIX):
        return None
    owner, dot, kind = name.removesuffix(ATTESTATION_SUFFIX).rpartition(".")
    return owner if dot and kind and owner else None


def read_distribution(path: Path) -> Distribution:
    from packaging import metadata as pkg_metadata
    from packaging.version import Version
    from twine import exceptions, sdist, wheel

    is_wheel = path.name.endswith(WHEEL_SUFFIX)
    reader = wheel.Wheel(str(path)) if is_wheel else sdist.SDist(str(path))
    try:
        data = reader.read()
        raw, unparsed = pkg_metadata.parse_email(data)
    except (exceptions.InvalidDistribution, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise DistributionError(
            f"`{path.name}` is not a readable distribution: {e}. Rebuild it; a truncated "
            "download or a hand-made archive is the usual cause.",
            title=f"Invalid distribution {path.name}",
        ) from e

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

    size, digests = _digest(path)
    return Distribution(
        path=path,
        filetype="bdist_wheel" if is_wheel else "sdist",
        pyversion=reader.py_version,
        name=raw["name"],
        version=raw["version"],
        size=size,
        digests=digests,
        metadata=raw,
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
