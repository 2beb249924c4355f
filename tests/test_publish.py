"""The orchestrator's promise, in-process: from the first upload request on, every ending (an
error, a bug) reports each file as it is, and every minted token is revoked.

`publish()` runs against the real stand-ins (OIDC runtime, Warehouse); only the stage after the
upload is made to fail, as an index whose certificate changes between two reads would, or a bug.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import publisher.publish
from publisher.console import Console
from publisher.context import load_context
from publisher.errors import CertificateNotTrusted, InternalError, PublishError
from publisher.publish import publish
from publisher.settings import load_settings
from publisher.values import Report
from tests.conftest import Runner
from tests.servers import Warehouse


@pytest.fixture(autouse=True)
def in_the_workspace(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(runner.workspace)  # as the runner starts the action


def publish_in_process(runner: Runner, warehouse: Warehouse) -> tuple[Report, str]:
    environ = runner.environment({"repository-url": warehouse.upload_url, "attestations": "false"})
    stream = io.StringIO()
    context = load_context(environ)
    report = publish(load_settings(environ), context, Console(stream, in_actions=True))
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
