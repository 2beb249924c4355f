"""publisher/upload.py, alone: what a partial upload says made it (the e2e tests drive the rest)."""

from __future__ import annotations

from pathlib import Path

from publisher.distributions import find_distributions
from publisher.errors import PublishError, UploadError
from publisher.upload import _partial
from publisher.values import FileResult, Status
from tests.conftest import build_release


def test_a_partial_upload_names_every_file_on_the_index_and_every_other(tmp_path: Path) -> None:
    """A file the index turned out to hold already (its refusal settled by reading the index)
    made it as much as one uploaded or skipped: a re-run need not send it."""
    build_release(tmp_path, 4)
    dists = find_distributions(tmp_path).distributions
    statuses = (
        Status.UPLOADED,
        Status.ALREADY_THERE,
        Status.SKIPPED,
        Status.FAILED,
        Status.UNKNOWN,
    )
    results = tuple(FileResult(d, s) for d, s in zip(dists, statuses, strict=True))

    error = _partial(PublishError("refused", title="Refused"), results)

    assert isinstance(error, UploadError)
    assert error.uploaded == tuple(d.filename for d in dists[:3])
    assert error.not_uploaded == (dists[3].filename,)
    assert error.unknown == (dists[4].filename,)
    assert "Re-running the job with `skip-existing: true`" in error.markdown


def test_one_file_that_failed_needs_no_list(tmp_path: Path) -> None:
    build_release(tmp_path, 0)
    (dist,) = find_distributions(tmp_path).distributions
    error = PublishError("refused", title="Refused")

    assert _partial(error, (FileResult(dist, Status.FAILED),)) is error
