"""Uploading each distribution with twine's own pieces, in this process.

twine's `Repository` posts the legacy upload form; we give it a `PackageFile` that carries the
digests we already computed (so the file is hashed once) and call it once per attempt, so that
retries follow our policy. This loop owns what twine leaves out: skip-existing on any index
(Warehouse answers 400 "File already exists", pypiserver 409), a retried upload that finds its
own file already there, and a fresh upload token before the minted one expires.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests
from twine.package import PackageFile, _safe_name
from twine.repository import Repository

from publisher.console import Console, human_size
from publisher.distributions import Distribution
from publisher.errors import PublishError, UploadError
from publisher.http import UPLOAD_TIMEOUT, RetryPolicy, answer_text, make_session, with_retries
from publisher.index import index_name
from publisher.simple import RemoteFile, existing_files

RENEW_MARGIN = 120.0  # seconds of validity an upload token must have left to start a file


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    expires: float | None = None  # set for a minted token


@dataclass(frozen=True)
class FileResult:
    distribution: Distribution
    status: str  # "uploaded", "skipped", "dry-run" or "failed"
    url: str = ""
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    results: tuple[FileResult, ...]
    error: PublishError | None = None


class _PrehashedPackageFile(PackageFile):
    """twine's upload form for a distribution we already parsed and hashed."""

    def __init__(self, dist: Distribution) -> None:
        # What PackageFile.__init__ sets, minus its second pass over the file.
        self.filename = str(dist.path)
        self.basefilename = dist.filename
        self.comment = None
        self.metadata = dist.metadata
        self.python_version = dist.pyversion
        self.filetype = dist.filetype
        self.safe_name = _safe_name(dist.name)  # as twine sends it
        self.version = dist.version
        self.signed_filename = self.filename + ".asc"
        self.signed_basefilename = self.basefilename + ".asc"
        self.gpg_signature = None
        # The form's `attestations` field: a JSON list of every attestation beside the file.
        self.attestations = [json.loads(p.read_bytes()) for p in dist.attestation_files] or None
        self.sha2_digest = dist.digests.sha256
        self.blake2_256_digest = dist.digests.blake2_256


def upload_distributions(
    distributions: tuple[Distribution, ...],
    credentials: Credentials,
    *,
    repository_url: str,
    skip_existing: bool,
    known: Mapping[str, RemoteFile],
    renew: Callable[[], Credentials] | None,
    policy: RetryPolicy,
    console: Console,
) -> Outcome:
    """Upload each file in turn; stop at the first failure, and say which files made it."""
    logging.getLogger("twine").addHandler(logging.NullHandler())  # its warnings are ours to say
    session = make_session(UPLOAD_TIMEOUT)
    repository = Repository(repository_url, None, None, disable_progress_bar=True)
    repository.session.close()
    repository.session = session
    results: list[FileResult] = []
    used = False  # a token just minted is not renewed before its first upload
    try:
        for dist in distributions:
            remote = known.get(dist.filename)
            try:
                if skip_existing and remote is not None:
                    result = _skipped(dist, remote, console)
                else:
                    if renew and used and (credentials.expires or 0) - time.time() < RENEW_MARGIN:
                        console.line("The upload token is about to expire: minting a fresh one.")
                        credentials, used = renew(), False
                    session.auth = (credentials.username, credentials.password)
                    used = True
                    result = _upload_one(
                        dist, repository, repository_url, skip_existing, policy, console
                    )
            except PublishError as error:
                results.append(FileResult(dist, "failed"))
                results.extend(
                    FileResult(d, "failed", note="not attempted after an earlier failure")
                    for d in distributions[len(results) :]
                )
                return Outcome(tuple(results), _partial(error, results, distributions))
            results.append(result)
            console.line(describe(result), style="green" if result.status == "uploaded" else None)
    finally:
        session.close()
    return Outcome(tuple(results))


def _upload_one(
    dist: Distribution,
    repository: Repository,
    repository_url: str,
    skip_existing: bool,
    policy: RetryPolicy,
    console: Console,
) -> FileResult:
    package = _PrehashedPackageFile(dist)
    attempts = []
    started = time.monotonic()

    def attempt(number: int) -> requests.Response:
        attempts.append(number)
        response: requests.Response = repository.upload(package, max_redirects=1)
        return response

    response = with_retries(
        attempt,
        url=repository_url,
        what=f"Uploading {dist.filename}",
        policy=policy,
        log=console.line,
    )
    seconds = time.monotonic() - started
    said = answer_text(response)
    console.detail(f"{response.status_code} {response.reason}" + (f": {said}" if said else ""))
    if response.status_code == 200:
        return FileResult(dist, "uploaded", seconds=seconds)

    if _already_exists(response):
        remote = _lookup(dist, repository_url, policy, console)
        identical = remote is not None and remote.sha256 == dist.digests.sha256
        if identical and len(attempts) > 1:
            # An earlier attempt delivered the file but its answer was lost.
            return FileResult(dist, "uploaded", url=remote.url if remote else "", seconds=seconds)
        if skip_existing:
            return _skipped(dist, remote or RemoteFile("", ""), console)
        raise UploadError(
            f"{index_name(repository_url)} already has `{dist.filename}` "
            f"({'the same file' if identical else 'with other content' if remote else 'answered'}"
            f": HTTP {response.status_code} {response.reason}). A file name can be used only "
            "once. If this is a re-run after a partial upload, set `skip-existing: true`; "
            "otherwise give the release a new version number and rebuild.",
            title=f"{dist.filename} already exists",
        )
    if response.status_code in (401, 403):
        raise UploadError(
            f"{index_name(repository_url)} refused the credentials for `{dist.filename}` "
            f"(HTTP {response.status_code} {response.reason}).{_quoted(said)}\n\n"
            "With trusted publishing, the minted token is valid only for the projects of the "
            f"trusted publisher: is `{dist.name}` one of them? With a password or API token, "
            "check the `user` and `password` inputs (an API token goes with `user: __token__`).",
            title=f"Credentials refused (HTTP {response.status_code})",
        )
    if "Invalid attestations supplied during upload" in response.reason + said:
        raise UploadError(
            f"{index_name(repository_url)} refused the attestations of `{dist.filename}`: "
            f"HTTP {response.status_code} {response.reason}{_quoted(said)}\n\n"
            "PyPI verifies that each attestation names this file, its sha256, and the "
            "repository and workflow file of the trusted publisher. An attestation made "
            "elsewhere (another workflow, a reusable workflow, another build) does not fit: "
            "delete it from the packages directory and the action signs the file again, or set "
            "`attestations: false` to publish without attestations.",
            title=f"Attestations of {dist.filename} refused",
        )
    raise UploadError(
        f"{index_name(repository_url)} refused `{dist.filename}`: HTTP {response.status_code} "
        f"{response.reason}{_quoted(said)}",
        title=f"{dist.filename} refused (HTTP {response.status_code})",
    )


def describe(result: FileResult) -> str:
    """One log line a file: what happened, its size, and for an upload the time and throughput."""
    dist = result.distribution
    line = f"{result.status} {dist.filename} ({human_size(dist.size)}"
    if result.status == "uploaded" and result.seconds > 0:
        line += f" in {result.seconds:.2f} s, {human_size(dist.size / result.seconds)}/s"
    line += ")"
    return f"{line}: {result.note}" if result.note else line


def _quoted(said: str) -> str:
    """The index's own words, unless the status line already said all of them."""
    return f"\n\nThe index said:\n\n```\n{said}\n```" if said else ""


def _already_exists(response: requests.Response) -> bool:
    if response.status_code == 409:
        return True
    return response.status_code == 400 and "already exist" in (response.reason + response.text)


def _lookup(
    dist: Distribution, repository_url: str, policy: RetryPolicy, console: Console
) -> RemoteFile | None:
    with make_session() as session:
        files = existing_files(
            session, repository_url, [dist.name], policy=policy, log=console.line
        )
    return (files or {}).get(dist.filename)


def _skipped(dist: Distribution, remote: RemoteFile, console: Console) -> FileResult:
    if remote.sha256 and remote.sha256 != dist.digests.sha256:
        console.warning(
            f"`{dist.filename}` is already on the index with other content (sha256 "
            f"{remote.sha256}, ours {dist.digests.sha256}): a different build was published "
            "under this name. Skipped; bump the version to publish this build.",
            title=f"{dist.filename} differs from the published file",
        )
        return FileResult(dist, "skipped", url=remote.url, note="different content on the index")
    note = "identical file already on the index" if remote.sha256 else "already on the index"
    return FileResult(dist, "skipped", url=remote.url, note=note)


def _partial(
    error: PublishError, results: list[FileResult], distributions: tuple[Distribution, ...]
) -> PublishError:
    uploaded = tuple(
        r.distribution.filename for r in results if r.status in ("uploaded", "skipped")
    )
    if not uploaded and len(distributions) == 1:
        return error
    done = {r.distribution.filename for r in results if r.status in ("uploaded", "skipped")}
    not_uploaded = tuple(d.filename for d in distributions if d.filename not in done)
    return UploadError(
        error.markdown, title=error.title, uploaded=uploaded, not_uploaded=not_uploaded
    )
