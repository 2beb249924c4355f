"""What the action reads of a real devpi-server: its simple API is `<index>/+simple/`, found from
the upload URL alone (devpi's `X-Devpi-*` headers) or given as `index-url`. Each test publishes
to a fresh non-volatile index with no base, with user and password, and checks what devpi holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import (
    README,
    Runner,
    assert_no_secrets,
    rebuild_with_other_content,
    write_wheel,
)
from tests.devpi import DevpiIndex, devpi_fixture, devpi_server_fixture  # noqa: F401 (fixtures)


def inputs(index: DevpiIndex, **extra: str) -> dict[str, str]:
    return {
        "repository-url": index.upload_url,
        "user": index.user,
        "password": index.password,
        **extra,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published(dists: list[Path]) -> dict[str, str]:
    return {p.name: sha256(p) for p in dists}


def only_simple_pages_read(index: DevpiIndex) -> bool:
    """The action read devpi's `+simple/` and nothing beside it (no other candidate probed)."""
    reads = index.received("GET")
    return bool(reads) and all(path.startswith(urlsplit(index.simple_url).path) for path in reads)


def test_a_publish_uploads_both_files_and_devpi_serves_them(
    runner: Runner, devpi: DevpiIndex, dists: list[Path]
) -> None:
    run = runner(inputs(devpi), id_token=False)

    assert run.returncode == 0, run.log
    assert {f["filename"]: f["status"] for f in run.files()} == {p.name: "uploaded" for p in dists}
    assert devpi.files() == published(dists)
    assert len(devpi.received("POST")) == 2
    assert run.outputs["verified"] == "true", run.log  # the release awaited until served
    assert only_simple_pages_read(devpi), devpi.received("GET")
    assert_no_secrets(run, devpi.password)


def test_a_dry_run_after_a_publish_lists_the_files_as_on_the_index(
    runner: Runner, devpi: DevpiIndex, dists: list[Path]
) -> None:
    assert runner(inputs(devpi), id_token=False).returncode == 0

    run = runner(inputs(devpi, **{"dry-run": "true"}), id_token=False)

    assert run.returncode == 0, run.log
    assert run.outputs["dry-run"] == "true"
    assert {f["status"] for f in run.files()} == {"dry-run"}
    for path in dists:
        assert f"would skip {path.name} (identical file already on the index)" in run.stdout
    assert run.summary.count("dry-run (identical file already on the index)") == 2, run.summary
    assert len(devpi.received("POST")) == 2  # the publish's, none since
    assert devpi.files() == published(dists)


def test_a_rerun_with_a_new_file_sends_only_the_new_file(
    runner: Runner, devpi: DevpiIndex, dists: list[Path]
) -> None:
    assert runner(inputs(devpi), id_token=False).returncode == 0
    new = dists[0].parent / "example_pkg-1.0.0-py312-none-any.whl"  # another tag, same release
    metadata = (
        "Metadata-Version: 2.1\nName: example-pkg\nVersion: 1.0.0\nSummary: An example\n"
        f"Description-Content-Type: text/markdown\n\n{README}"
    )
    write_wheel(new, "example_pkg", "1.0.0", metadata, b"VALUE = 42\n")

    run = runner(inputs(devpi), id_token=False)  # no skip-existing

    assert run.returncode == 0, run.log
    statuses = {f["filename"]: f["status"] for f in run.files()}
    assert statuses == {dists[0].name: "already-there", dists[1].name: "already-there"} | {
        new.name: "uploaded"
    }
    for path in dists:
        assert f"already there {path.name}" in run.stdout
    assert len(devpi.received("POST")) == 3  # two the first time, the new wheel now
    assert sorted(devpi.stored()) == sorted(p.name for p in [*dists, new])  # each once
    assert devpi.files() == published([*dists, new])
    assert run.outputs["verified"] == "true", run.log


def test_another_build_under_the_same_names_fails_before_any_upload(
    runner: Runner, devpi: DevpiIndex, dists: list[Path]
) -> None:
    assert runner(inputs(devpi), id_token=False).returncode == 0
    original = published(dists)
    rebuilt = rebuild_with_other_content(dists)

    run = runner(inputs(devpi), id_token=False)

    assert run.returncode == 1, run.log
    assert "::error title=Other builds are already published under these names::" in run.stdout
    for path in rebuilt:
        ours, theirs = sha256(path), original[path.name]
        assert ours != theirs
        assert f"`{path.name}`: the index has sha256 `{theirs}`, this build `{ours}`" in (
            run.summary
        )
    assert "Nothing was uploaded." in run.summary
    assert len(devpi.received("POST")) == 2  # the first publish's only
    assert devpi.files() == original


def test_index_url_names_the_simple_root(
    runner: Runner, devpi: DevpiIndex, dists: list[Path]
) -> None:
    given = {"index-url": devpi.simple_url}
    first = runner(inputs(devpi, **given), id_token=False)
    assert first.returncode == 0, first.log
    assert {f["status"] for f in first.files()} == {"uploaded"}
    assert first.outputs["verified"] == "true", first.log

    run = runner(inputs(devpi, **given), id_token=False)

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"already-there"}
    assert len(devpi.received("POST")) == 2
    assert devpi.files() == published(dists)
    assert only_simple_pages_read(devpi), devpi.received("GET")
