"""Uploading each distribution with twine's own pieces, in this process.

twine's `Repository` posts the legacy upload form; we give it a `PackageFile` that carries the
digests we already computed (so the file is hashed once) and call it once per attempt, so that
retries follow our policy. This loop owns what twine leaves out: skip-existing on any index
(Warehouse answers 400 "File already exists", pypiserver 409), a retried upload that finds its
own file already there, a fresh upload token before the minted one expires, several files in
flight at once (each thread with its own session), and a cancelled job's last seconds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import requests
from twine.package import PackageFile, _safe_name
from twine.repository import Repository

from publisher.console import Console, human_size
from publisher.errors import InternalError, PublishError, UploadError
from publisher.existing import (
    Presence,
    already_there,
    other_build,
    presence,
    skipped_other_build,
)
from publisher.http import UPLOAD_TIMEOUT, answer_text, make_session, with_retries
from publisher.index import Index
from publisher.parallel import Outcome as ParallelOutcome
from publisher.parallel import run_bounded
from publisher.shared import Shared
from publisher.simple import RemoteFile, read_index
from publisher.values import Credentials, Distribution, FileResult, Status

RENEW_MARGIN = 120.0  # seconds of validity an upload token must have left to start a file
CANCEL_GRACE = 2.0  # seconds the uploads in flight get to finish after a cancellation


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


@dataclass(frozen=True)
class Uploading:
    """How the files go up, from the settings: skip what the index has with other content, how
    many at once, and how to renew a minted token that is about to expire."""

    skip_existing: bool = False
    concurrency: int = 1
    renew: Callable[[], Credentials] | None = None


def upload_distributions(
    distributions: tuple[Distribution, ...],
    credentials: Credentials,
    index: Index,
    shared: Shared,
    how: Uploading,
) -> Outcome:
    """Upload every file: the first alone (it creates the project and the release on the index,
    which concurrent uploads would race to do), then the others with at most `concurrency` in
    flight. After a failure or a cancellation nothing new starts; the results say, in the order
    of the files, which made it. An upload the index refuses is settled by reading the index
    (at its simple root, where the first read found it)."""
    logging.getLogger("twine").addHandler(logging.NullHandler())  # its warnings are ours to say
    token = _SharedToken(credentials, how.renew, shared.console)
    repositories = _Repositories(index.repository_url)
    log = _InOrder(shared.console)

    def upload(dist: Distribution) -> FileResult:
        repository = repositories.for_this_thread()
        current = token.take()
        repository.session.auth = (current.username, current.password)
        return _upload_one(dist, repository, index, shared, how.skip_existing)

    try:
        outcomes = run_bounded(
            upload,
            distributions,
            limit=how.concurrency,
            first_alone=True,
            stop=lambda: shared.cancellation.requested,
            grace=CANCEL_GRACE,
            on_outcome=log.add,
        )
    finally:
        repositories.close()
    cancelled = shared.cancellation.requested
    results = tuple(_result(d, o, cancelled) for d, o in zip(distributions, outcomes, strict=True))
    return Outcome(results, _ending(outcomes, results, shared))


def _ending(
    outcomes: list[ParallelOutcome[FileResult]], results: tuple[FileResult, ...], shared: Shared
) -> PublishError | None:
    """The error the upload ends with, the files listed as they are; None when all went up."""
    errors: list[PublishError] = []
    for outcome in outcomes:
        if isinstance(outcome.error, PublishError):
            errors.append(outcome.error)
        elif outcome.error is not None:  # a bug: its traceback, and the other files' results
            shared.console.traceback(outcome.error)
            errors.append(InternalError(outcome.error))
    if shared.cancellation.requested:
        name = shared.cancellation.signal_name
        cancelled = PublishError(
            f"The job was cancelled ({name}) during the upload: nothing new was started, "
            f"the uploads in flight had {CANCEL_GRACE:.0f} s to finish.",
            title=f"Cancelled ({name}) during the upload",
        )
        return _partial(cancelled, results)
    return _partial(errors[0], results) if errors else None


class _SharedToken:
    """The credentials every upload uses. One upload at a time renews them, for all: the others
    wait for the fresh token, or fail with the same error if the renewal failed (after its own
    retries: nobody tries again). A token just minted is not renewed before its first upload."""

    def __init__(
        self, credentials: Credentials, renew: Callable[[], Credentials] | None, console: Console
    ) -> None:
        self._credentials = credentials
        self._renew = renew
        self._console = console
        self._used = False
        self._failed: PublishError | None = None
        self._lock = threading.Lock()

    def take(self) -> Credentials:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            expires = self._credentials.expires or 0
            if self._renew and self._used and expires - time.time() < RENEW_MARGIN:
                self._console.line("The upload token is about to expire: minting a fresh one.")
                try:
                    self._credentials, self._used = self._renew(), False
                except PublishError as e:
                    self._failed = e
                    raise
            self._used = True
            return self._credentials


class _Repositories:
    """One twine `Repository` a thread: each with its own session (and its own credentials)."""

    def __init__(self, repository_url: str) -> None:
        self._url = repository_url
        self._local = threading.local()
        self._made: list[Repository] = []
        self._lock = threading.Lock()

    def for_this_thread(self) -> Repository:
        repository: Repository | None = getattr(self._local, "repository", None)
        if repository is None:
            repository = Repository(self._url, None, None, disable_progress_bar=True)
            repository.session.close()
            repository.session = make_session(UPLOAD_TIMEOUT)
            self._local.repository = repository
            with self._lock:
                self._made.append(repository)
        return repository

    def close(self) -> None:
        with self._lock:
            for repository in self._made:
                repository.session.close()


class _InOrder:
    """A line a file, in the order of the files, whatever order they finish in."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._ended: dict[int, ParallelOutcome[FileResult]] = {}
        self._next = 0

    def add(self, index: int, outcome: ParallelOutcome[FileResult]) -> None:
        self._ended[index] = outcome
        while self._next in self._ended:
            result = self._ended.pop(self._next).value
            self._next += 1
            if result is not None:
                style = "green" if result.status == Status.UPLOADED else None
                self._console.line(describe(result), style=style)


def _result(
    dist: Distribution, outcome: ParallelOutcome[FileResult], cancelled: bool
) -> FileResult:
    if outcome.value is not None:
        return outcome.value
    if not outcome.started:
        why = "the job was cancelled" if cancelled else "an earlier failure"
        return FileResult(dist, Status.FAILED, note=f"not attempted after {why}")
    if not outcome.finished:
        return FileResult(dist, Status.UNKNOWN, note="cut off by the cancellation: check the index")
    if outcome.error is not None and not isinstance(outcome.error, PublishError):
        return FileResult(
            dist, Status.UNKNOWN, note="cut off by an internal error: check the index"
        )
    return FileResult(dist, Status.FAILED)


def _upload_one(
    dist: Distribution,
    repository: Repository,
    index: Index,
    shared: Shared,
    skip_existing: bool,
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
        url=index.repository_url,
        what=f"Uploading {dist.filename}",
        policy=shared.policy,
        log=shared.log,
    )
    seconds = time.monotonic() - started
    said = answer_text(response)
    shared.console.detail(
        f"{response.status_code} {response.reason}" + (f": {said}" if said else "")
    )
    if response.status_code == 200:
        return FileResult(dist, Status.UPLOADED, seconds=seconds)
    if response.status_code in (400, 403, 409):
        settled = _settle(dist, response, index, shared, skip_existing)
        if settled is not None and settled.status is Status.ALREADY_THERE and len(attempts) > 1:
            # an earlier attempt delivered the file but its answer was lost
            settled = FileResult(dist, Status.UPLOADED, url=settled.url)
        if settled is not None:
            return replace(settled, seconds=seconds)
    raise _refused(dist, response, index, said)


def _refused(
    dist: Distribution, response: requests.Response, index: Index, said: str
) -> UploadError:
    """Why the index refused `dist`, and what to do about it."""
    status = f"HTTP {response.status_code} {response.reason}"
    if response.status_code in (401, 403):
        return UploadError(
            f"{index.name} refused the credentials for `{dist.filename}` "
            f"({status}).{_quoted(said)}\n\n"
            "With trusted publishing, the minted token is valid only for the projects of the "
            f"trusted publisher: is `{dist.name}` one of them? With a password or API token, "
            "check the `user` and `password` inputs (an API token goes with `user: __token__`).",
            title=f"Credentials refused (HTTP {response.status_code})",
        )
    if "Invalid attestations supplied during upload" in response.reason + said:
        return UploadError(
            f"{index.name} refused the attestations of `{dist.filename}`: "
            f"{status}{_quoted(said)}\n\n"
            "PyPI verifies that each attestation names this file, its sha256, and the "
            "repository and workflow file of the trusted publisher. An attestation made "
            "elsewhere (another workflow, a reusable workflow, another build) does not fit: "
            "delete it from the packages directory and the action signs the file again, or set "
            "`attestations: false` to publish without attestations.",
            title=f"Attestations of {dist.filename} refused",
        )
    return UploadError(
        f"{index.name} refused `{dist.filename}`: {status}{_quoted(said)}",
        title=f"{dist.filename} refused (HTTP {response.status_code})",
    )


def describe(result: FileResult) -> str:
    """One log line a file: what happened, its size, and for an upload the time and throughput."""
    dist = result.distribution
    line = f"{result.status.replace('-', ' ')} {dist.filename} ({human_size(dist.size)}"
    if result.status == Status.UPLOADED and result.seconds > 0:
        line += f" in {result.seconds:.2f} s, {human_size(dist.size / result.seconds)}/s"
    line += ")"
    return f"{line}: {result.note}" if result.note else line


def _quoted(said: str) -> str:
    """The index's own words, unless the status line already said all of them; in a fence
    longer than any run of backticks they hold, so that they cannot close it."""
    if not said:
        return ""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", said)), default=0))
    return f"\n\nThe index said:\n\n{fence}\n{said}\n{fence}"


def _settle(
    dist: Distribution,
    response: requests.Response,
    index: Index,
    shared: Shared,
    skip_existing: bool,
) -> FileResult | None:
    """The index refused the upload: is the file there? Asked of the index itself, not guessed
    from each vendor's words (409, 400 "File already exists", 403 "cannot overwrite", ...).
    None: it is not there, so the refusal is about something else."""
    with make_session() as session:  # this upload's thread's own
        listing = read_index(replace(shared, session=session), index, [dist.name], fresh=True)
    remote = listing.files.get(dist.filename)
    if not listing.readable:
        text = response.reason + response.text
        if response.status_code != 409 and "already exist" not in text.lower():
            return None
        remote = RemoteFile("", "")  # there, by the index's words; its content unknown
    if remote is None:
        return None
    found = presence(dist, remote)
    if found is Presence.SAME:
        return already_there(dist, remote)
    if skip_existing:
        if found is Presence.BY_NAME:
            return FileResult(dist, Status.SKIPPED, note="already on the index")
        return skipped_other_build(dist, remote, shared.console)
    raise UploadError(
        f"{index.name} already has `{dist.filename}` "
        + (f"with other content ({other_build(dist, remote)})" if remote.sha256 else "")
        + f" (HTTP {response.status_code} {response.reason}). A file name can be used only "
        "once. If this is a re-run after a partial upload, set `skip-existing: true`; "
        "otherwise give the release a new version number and rebuild.",
        title=f"{dist.filename} already exists",
    )


def _partial(error: PublishError, results: tuple[FileResult, ...]) -> PublishError:
    """`error`, with the list of what made it and what did not (unless there was one file)."""
    uploaded = tuple(r.distribution.filename for r in results if r.on_index)
    unknown = tuple(r.distribution.filename for r in results if r.status == Status.UNKNOWN)
    if not uploaded and not unknown and len(results) == 1:
        return error
    not_uploaded = tuple(r.distribution.filename for r in results if r.status == Status.FAILED)
    return UploadError(
        error.markdown,
        title=error.title,
        uploaded=uploaded,
        not_uploaded=not_uploaded,
        unknown=unknown,
    )
