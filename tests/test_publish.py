"""The orchestrator's promises, in-process: nothing is minted before the metadata check, nothing
uploaded unless every file was attested, every minted token revoked on every path, and from the
first upload request on every ending (an error, a bug, a cancellation) reports each file as it is.

`publish()` runs in this process against the Warehouse stand-in (a real HTTP server in a thread);
the pipeline tests give it a fake trusted publishing that records what it is asked, in order,
beside each upload request, and each takes well under a second. The first tests use the real
OIDC runtime and make only the stage after the upload fail, as an index whose certificate
changes between two reads would, or a bug.
"""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

import publisher.publish
from publisher.console import Console
from publisher.context import load_context
from publisher.errors import (
    AttestationError,
    CertificateNotTrusted,
    InternalError,
    PublishError,
    TrustedPublishingError,
)
from publisher.job import Job
from publisher.publish import publish
from publisher.settings import load_settings
from publisher.trusted_publishing import TrustedPublishing, UploadToken
from publisher.values import Credentials, Report, Status
from tests.conftest import Runner, build_dists
from tests.servers import Minted, Publisher, Warehouse


@pytest.fixture(autouse=True)
def in_the_workspace(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(runner.workspace)  # as the runner starts the action


def publish_in_process(runner: Runner, warehouse: Warehouse) -> tuple[Report, str]:
    environ = runner.environment({"repository-url": warehouse.upload_url, "attestations": "false"})
    stream = io.StringIO()
    context = load_context(environ)
    report = publish(Job(load_settings(environ), context, Console(stream, in_actions=True)))
    return report, stream.getvalue()


def fail_with(error: BaseException) -> Any:
    def await_release(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    return await_release


def test_an_error_after_the_upload_reports_each_file_uploaded(
    runner: Runner, warehouse: Warehouse, dists: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    untrusted = CertificateNotTrusted("The index's certificate changed.")
    monkeypatch.setattr(publisher.publish, "await_release", fail_with(untrusted))

    report, _log = publish_in_process(runner, warehouse)

    assert report.error is untrusted
    assert sorted(r.distribution.filename for r in report.results) == sorted(p.name for p in dists)
    assert {r.status for r in report.results} == {"uploaded"}
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert all(m.burned for m in warehouse.minted)


def test_a_bug_after_the_upload_reports_each_file_and_shows_its_traceback(
    runner: Runner,
    warehouse: Warehouse,
    dists: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(publisher.publish, "await_release", fail_with(KeyError("oops")))

    report, _log = publish_in_process(runner, warehouse)

    assert isinstance(report.error, InternalError)
    assert "listed as uploaded are on the index" in report.error.markdown
    assert {r.status for r in report.results} == {"uploaded"}
    assert len(report.results) == len(dists)
    assert "KeyError: 'oops'" in capsys.readouterr().err
    assert all(m.burned for m in warehouse.minted)


def test_an_error_before_the_upload_reports_no_file(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.audience_status = 404  # no trusted publishing on this index: nothing is sent

    report, _log = publish_in_process(runner, warehouse)

    assert isinstance(report.error, PublishError)
    assert report.results == ()
    assert warehouse.upload_attempts == []


# --- the pipeline's ordering guarantees, with a fake trusted publishing -----------------------


class FakeTrustedPublishing(TrustedPublishing):
    """Trusted publishing without an OIDC runtime: it mints by registering a token with the
    Warehouse stand-in (as the index would), records every call in `events`, and can be told
    to fail where a real exchange or Sigstore would."""

    def __init__(self, job: Job, warehouse: Warehouse, events: list[str], fail: str = "") -> None:
        super().__init__(job.shared, job.settings.repository_url, None)
        self.warehouse, self.events, self.fail = warehouse, events, fail

    def credentials(self, projects: Iterable[str]) -> Credentials:
        self.events.append("mint")
        if self.fail == "mint":
            raise TrustedPublishingError("The index refused the token.")
        token = UploadToken(f"pypi-fake-{len(self.minted)}", time.time() + 900)
        self.minted.append(token)
        self.warehouse.minted.append(
            Minted(token.value, token.expires, tuple(sorted(projects)), Publisher())
        )
        return Credentials("__token__", token.value, token.expires)

    def sigstore_token(self) -> str:
        self.events.append("sigstore token")
        if self.fail == "sigstore":
            raise AttestationError("Fulcio is down.")
        raise AssertionError("these tests never sign")

    def _revoke(self, token: UploadToken, *, quick: bool = False) -> None:
        self.events.append(f"revoke {token.value}")


def pipeline(
    runner: Runner,
    warehouse: Warehouse,
    inputs: dict[str, str],
    fail: str = "",
    on_upload: Callable[[Job], None] = lambda job: None,
) -> tuple[Report, list[str]]:
    """`publish()` in this process, its trusted publishing a fake; the events in order, with
    each upload request the index received among them (and `on_upload(job)` as it arrives)."""
    environ = runner.environment(
        {"repository-url": warehouse.upload_url, "await-release": "false"} | inputs
    )
    events: list[str] = []
    job = Job(
        load_settings(environ), load_context(environ), Console(io.StringIO(), in_actions=True)
    )
    job.trusted_publishing = lambda j: FakeTrustedPublishing(j, warehouse, events, fail)
    original = warehouse.handle

    def handle(method: str, path: str, headers: Any, body: bytes) -> Any:
        if method == "POST" and path.startswith("/legacy/"):
            events.append("upload")
            on_upload(job)
        return original(method, path, headers, body)

    warehouse.handle = handle  # type: ignore[method-assign]
    return publish(job), events


def test_the_pipeline_mints_after_the_checks_uploads_then_revokes(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    report, events = pipeline(runner, warehouse, {"attestations": "false"})

    assert report.error is None
    assert events == ["mint", "upload", "upload", "revoke pypi-fake-0"]
    assert {r.status for r in report.results} == {Status.UPLOADED}


def test_nothing_is_minted_or_read_before_the_metadata_check_passes(
    runner: Runner, warehouse: Warehouse
) -> None:
    build_dists(runner.workspace / "dist", description="")  # no long description: refused

    report, events = pipeline(runner, warehouse, {"attestations": "false"})

    assert report.error is not None
    assert report.error.title == "Metadata check failed"
    assert events == []
    assert warehouse.requests == []


def test_nothing_is_uploaded_unless_every_file_was_attested(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    report, events = pipeline(runner, warehouse, {}, fail="sigstore")

    assert isinstance(report.error, AttestationError)
    assert events == ["mint", "sigstore token", "revoke pypi-fake-0"]
    assert warehouse.files == {}
    assert report.results == ()


@pytest.mark.parametrize(
    ("fail", "upload_status", "expected"),
    [
        ("mint", None, ["mint"]),  # no token: nothing to revoke
        ("", 400, ["mint", "upload", "revoke pypi-fake-0"]),  # the index refuses the first file
        ("", 500, ["mint", *["upload"] * 5, "revoke pypi-fake-0"]),  # it stays down
    ],
)
def test_every_token_minted_is_revoked_on_every_path(
    runner: Runner,
    warehouse: Warehouse,
    dists: list[Path],
    fail: str,
    upload_status: int | None,
    expected: list[str],
) -> None:
    if upload_status is not None:
        warehouse.fail_next["/legacy/"] = [upload_status] * 5
    report, events = pipeline(runner, warehouse, {"attestations": "false"}, fail=fail)

    assert report.error is not None
    assert events == expected


def test_a_cancelled_job_revokes_and_says_what_was_sent(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    """SIGTERM as the first upload arrives: the upload loop winds down, the token is revoked,
    and each file is reported as it is."""

    def stop(job: Job) -> None:
        if len(job.progress.sending) and not job.cancellation.requested:
            job.cancellation._handle(signal.SIGTERM, None)  # as the signal would, mid-upload

    report, events = pipeline(runner, warehouse, {"attestations": "false"}, on_upload=stop)

    assert events == ["mint", "upload", "revoke pypi-fake-0"]  # nothing started after it
    assert report.error is not None
    assert report.error.title == "Cancelled (SIGTERM) during the upload"
    assert report.results[0].status is Status.UPLOADED
    assert report.results[1].status is Status.FAILED  # never started
