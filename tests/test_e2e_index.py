"""What the index holds, end to end on the Warehouse stand-in: files already there, what PyPI
refuses for other reasons, a simple API elsewhere, one that cannot be read, and the release
awaited until it is served. Real devpi and pypiserver: tests/test_e2e_devpi.py and
tests/test_e2e_private_index.py.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from publisher.await_release import await_release
from publisher.cancel import Cancellation
from publisher.console import Console
from publisher.distributions import find_distributions
from publisher.http import RetryPolicy, make_session
from publisher.index import Index
from publisher.shared import Shared
from publisher.values import Distribution, FileResult, Status
from tests.conftest import Runner, assert_no_secrets, build_dists, rebuild_with_other_content
from tests.servers import OidcRuntime, Warehouse


def test_a_rerun_sends_nothing_and_reports_the_files_already_there(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    warehouse.requests.clear()

    run = runner({"repository-url": warehouse.upload_url})  # no skip-existing

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"already-there"}
    assert warehouse.count("POST", "/legacy/") == 0  # Warehouse would answer 200: not "uploaded"
    assert run.outputs["verified"] == "true"
    assert "Done: 2 already-there." in run.stdout


@pytest.mark.parametrize("skip", ["false", "true"])
def test_a_second_sdist_is_refused_with_the_index_words(
    runner: Runner, warehouse: Warehouse, dists: list[Path], skip: str
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    sdist = next(p for p in dists if p.name.endswith(".tar.gz"))
    sdist.rename(sdist.with_name("example-pkg-1.0.0.tar.gz"))  # another name for the sdist

    run = runner({"repository-url": warehouse.upload_url, "skip-existing": skip})

    assert run.returncode == 1, run.log
    assert "Only one sdist may be uploaded per release." in run.summary
    assert "example-pkg-1.0.0.tar.gz refused (HTTP 400)" in run.summary


def test_an_old_release_is_refused_with_the_index_words(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.old_versions.add("1.0.0")
    run = runner({"repository-url": warehouse.upload_url, "skip-existing": "true"})

    assert run.returncode == 1, run.log
    assert "releases older than 14 days is not allowed" in run.summary
    assert warehouse.files == {}


def test_a_simple_api_no_rule_finds_is_read_through_index_url(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.simple_prefix = "/mirror/pypi/simple/"
    first = {"repository-url": warehouse.upload_url, "await-release": "false"}
    assert runner(first).returncode == 0

    blind = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})
    seeing = runner(
        {
            "repository-url": warehouse.upload_url,
            "dry-run": "true",
            "index-url": f"{warehouse.url}/mirror/pypi/simple/",
        }
    )

    assert {f["status"] for f in seeing.files()} == {"dry-run"}
    assert "identical file already on the index" not in blind.summary
    assert seeing.summary.count("identical file already on the index") == 2


def test_an_index_that_cannot_be_read_is_said_and_never_taken_as_empty(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.simple_status = 401
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert "::warning title=Index not readable::" in run.stdout
    assert "HTTP 401" in run.summary
    assert "Could not check what the index holds" in run.summary
    assert run.outputs["verified"] == "false"  # nor can it see the release served


def test_the_release_is_awaited_until_served(
    runner: Runner, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.serve_delay = 1.2
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert run.outputs["verified"] == "true"
    lines = run.stdout.splitlines()
    served = [line for line in lines if line.startswith("served ")]
    assert sorted(served) == sorted(f"served {p.name}" for p in dists)
    assert warehouse.count("GET", "/simple/example-pkg/") >= 3  # looked again, past the cache
    assert "✅ uploaded, served" in run.summary
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens)


def test_a_release_not_served_in_time_is_a_warning_naming_the_files(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.serve_delay = 60
    run = runner({"repository-url": warehouse.upload_url, "await-timeout": "1"})

    assert run.returncode == 0, run.log
    assert run.outputs["verified"] == "false"
    assert "::warning title=Release not served yet::" in run.stdout
    assert all(
        p.name in run.stdout.split("::warning title=Release not served yet::")[1] for p in dists
    )
    assert "**not served yet**" in run.summary


def test_a_release_served_with_other_bytes_is_an_error(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    wheel = next(p for p in dists if p.name.endswith(".whl"))
    warehouse.served_sha256[wheel.name] = "0" * 64
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 1, run.log
    assert run.outputs["verified"] == "false"
    assert f"{wheel.name} is served with other content" in run.summary
    assert "0" * 64 in run.summary
    assert sorted(warehouse.files) == sorted(p.name for p in dists)  # the upload itself worked


def test_await_release_false_does_not_wait(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.serve_delay = 60
    run = runner({"repository-url": warehouse.upload_url, "await-release": "false"})

    assert run.returncode == 0, run.log
    assert run.outputs["verified"] == ""
    assert warehouse.count("GET", "/simple/") == 1  # the look before the upload only


def test_a_new_version_beside_a_published_one(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    newer = build_dists(dists[0].parent, version="1.1.0")
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    statuses = {f["filename"]: f["status"] for f in run.files()}
    assert {statuses[p.name] for p in newer} == {"uploaded"}
    assert {statuses[p.name] for p in dists} == {"already-there"}


def test_an_index_without_hashes_is_taken_at_its_word_with_a_warning(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    warehouse.simple_hashes = False
    assert runner({"repository-url": warehouse.upload_url}).returncode == 0
    rebuild_with_other_content(dists)  # which it cannot tell from what it has
    warehouse.requests.clear()

    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert {f["status"] for f in run.files()} == {"already-there"}
    assert run.stdout.count("no hash on the index::") == 2
    assert "by name: the index gives no hash" in run.summary
    assert warehouse.count("POST", "/legacy/") == 0


@pytest.mark.parametrize("attested", [True, False])
def test_on_an_index_that_keeps_attestations_a_file_is_served_with_its_provenance(
    runner: Runner, warehouse: Warehouse, dists: list[Path], attested: bool
) -> None:
    """As on PyPI, where a file uploaded with attestations must be listed with its provenance
    (checked by `await_release` on PyPI's hosts only; asked for here). Without attestations
    the index has no provenance to list: the files never count as served."""
    inputs = {"repository-url": warehouse.upload_url, "await-release": "false"}
    assert runner(inputs | {"attestations": str(attested).lower()}).returncode == 0
    uploaded = tuple(  # each as the action reports a file it sent with its attestation
        FileResult(replace(d, attestation_files=(_publish_attestation(d),)), Status.UPLOADED)
        for d in find_distributions(dists[0].parent).distributions
    )
    console = Console(io.StringIO(), in_actions=False)

    with make_session() as session:
        served = await_release(
            Shared(console, RetryPolicy(delay=0.01), session, Cancellation()),
            Index(warehouse.upload_url),
            uploaded,
            timeout=0.5 if not attested else 5,
            provenance=True,
        )

    assert served.verified is attested
    assert {r.served for r in served.results} == {attested}


def _publish_attestation(dist: Distribution) -> Path:
    return dist.path.with_name(dist.filename + ".publish.attestation")
