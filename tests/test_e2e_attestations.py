"""PEP 740 attestations end to end: signed against the stand-in Sigstore by unmodified
sigstore-python, verified by the Warehouse stand-in as Warehouse verifies them.

Every run checks what Fulcio, Rekor and Warehouse received, what was written beside the files,
and scans the log, summary and outputs for every OIDC token (the `sigstore` one included) and
minted token.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt

from tests.conftest import Run, Runner, assert_masked_first, assert_no_secrets, build_dists
from tests.servers import OidcRuntime, Publisher, Warehouse
from tests.sigstore_standin import Sigstore

PUBLISH_PREDICATE = "https://docs.pypi.org/attestations/publish/v1"
REUSABLE = "octo-org/example-pkg/.github/workflows/publish-reusable.yml@refs/tags/v1.0.0"


def audiences(runtime: OidcRuntime) -> list[str]:
    return [jwt.decode(t, options={"verify_signature": False})["aud"] for t in runtime.issued]


def secrets(runtime: OidcRuntime, *warehouses: Warehouse) -> list[str]:
    return [*runtime.issued, *(t for w in warehouses for t in w.minted_tokens)]


def attestation_files(dists: list[Path]) -> list[Path]:
    return sorted(dists[0].parent.glob("*.attestation"))


def predicates(warehouse: Warehouse, filename: str) -> list[str]:
    return [
        json.loads(base64.b64decode(a["envelope"]["statement"]))["predicateType"]
        for a in warehouse.files[filename].attestations
    ]


def assert_failed_before_upload(run: Run, title: str, runtime: OidcRuntime, wh: Warehouse) -> None:
    assert run.returncode == 1, run.log
    assert f"::error title={title}" in run.stdout
    assert "Traceback" not in run.log
    assert wh.count("POST", "/legacy/") == 0
    assert all(m.burned for m in wh.minted), "a minted token was left alive"
    assert_no_secrets(run, *secrets(runtime, wh))


def test_every_file_is_attested_and_warehouse_verifies_it(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert audiences(runtime) == ["pypi", "sigstore"]
    assert len(sigstore.fulcio.issued) == 1  # one certificate for the run
    assert len(sigstore.rekor.entries) == 2  # one log entry per file
    for path in dists:
        stored = warehouse.files[path.name]
        assert predicates(warehouse, path.name) == [PUBLISH_PREDICATE]  # and it verified
        written = json.loads(Path(f"{path}.publish.attestation").read_text())
        assert stored.attestations == [written]
    assert run.outputs["attestations"].splitlines() == sorted(
        f"dist/{p.name}.publish.attestation" for p in dists
    )
    assert "| Attestation |" in run.summary
    assert "🔏 log index 0" in run.summary or "🔏 log index 1" in run.summary
    assert "search.sigstore.dev" not in run.summary  # another instance than the public one
    assert "signed example_pkg-1.0.0.tar.gz.publish.attestation" in run.stdout
    assert not list(dists[0].parent.glob(".*partial"))
    assert_masked_first(run, *secrets(runtime, warehouse))
    assert_no_secrets(run, *secrets(runtime, warehouse))


def test_attestations_false_signs_nothing_and_sends_nothing(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "attestations": "false"})

    assert run.returncode == 0, run.log
    assert audiences(runtime) == ["pypi"]
    assert sigstore.fulcio.requests == []
    assert sigstore.rekor.requests == []
    assert all(not f.attestations for f in warehouse.files.values())
    assert attestation_files(dists) == []
    assert run.outputs["attestations"] == ""
    assert "Attestation" not in run.summary.split("Index:")[0]


def test_a_password_publishes_without_attestations_and_says_nothing(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    warehouse.passwords["alice"] = "s3cret-password-value"
    inputs = {"repository-url": warehouse.upload_url, "user": "alice"}
    run = runner(inputs | {"password": "s3cret-password-value"})

    assert run.returncode == 0, run.log
    assert "attestation" not in run.stdout.lower()
    assert "attestation" not in run.summary.lower()
    assert runtime.requests == []
    assert sigstore.fulcio.requests == []
    assert all(not f.attestations for f in warehouse.files.values())

    # Only asking for them explicitly earns one notice.
    warehouse.files.clear()
    asked = runner(inputs | {"password": "s3cret-password-value", "attestations": "true"})
    assert asked.returncode == 0, asked.log
    assert asked.stdout.count("::notice title=No attestations::") == 1
    assert "only with trusted publishing" in asked.stdout
    assert_no_secrets(asked, "s3cret-password-value")


def test_a_second_publish_in_the_same_job_reuses_the_attestations(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    """As a job that publishes to TestPyPI, then PyPI: anchor #319 fails the second step."""
    first = runner({"repository-url": warehouse.upload_url})
    assert first.returncode == 0, first.log
    made = {p: p.read_bytes() for p in attestation_files(dists)}

    second_index = Warehouse(runtime)
    second_index.trusted_root = sigstore.trusted_root_json()
    try:
        second = runner({"repository-url": second_index.upload_url})

        assert second.returncode == 0, second.log
        assert len(sigstore.rekor.entries) == 2  # nothing signed again
        assert len(sigstore.fulcio.issued) == 1
        assert {p: p.read_bytes() for p in attestation_files(dists)} == made
        for path in dists:
            assert predicates(second_index, path.name) == [PUBLISH_PREDICATE]
        assert "reused example_pkg-1.0.0.tar.gz.publish.attestation" in second.stdout
        assert "(reused)" in second.summary
        assert audiences(runtime) == ["pypi", "sigstore", "pypi"]  # no Sigstore token needed
        assert_no_secrets(second, *secrets(runtime, warehouse, second_index))
    finally:
        second_index.close()


def test_an_attestation_of_another_build_stops_everything_before_any_request(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    first = runner({"repository-url": warehouse.upload_url})
    assert first.returncode == 0, first.log
    for path in dists:  # the same names rebuilt, the old attestations left beside them
        path.unlink()
    build_dists(dists[0].parent, code="VALUE = 43\n")
    runtime.requests.clear()
    warehouse.requests.clear()

    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 1, run.log
    assert "::error title=Attestations do not match their files::" in run.stdout
    assert "`dist/example_pkg-1.0.0-py3-none-any.whl.publish.attestation` attests another" in (
        run.summary
    )
    assert runtime.requests == []
    assert warehouse.requests == []


def test_attestations_made_by_an_earlier_step_go_up_with_their_file(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    """As astral-sh/attest-action leaves them: signed in an earlier step of the same job."""
    from pypi_attestations import Attestation, Distribution
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    config = ClientTrustConfig.from_json(json.dumps(sigstore.trust_config()))
    with SigningContext.from_trust_config(config).signer(
        IdentityToken(sigstore.identity_token())
    ) as signer:
        for path in dists:
            made = Attestation.sign(signer, Distribution.from_file(path))
            Path(f"{path}.publish.attestation").write_text(made.model_dump_json())
    entries = len(sigstore.rekor.entries)

    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert len(sigstore.rekor.entries) == entries
    assert "Files ignored" not in run.stdout
    for path in dists:
        assert predicates(warehouse, path.name) == [PUBLISH_PREDICATE]


def test_a_reusable_workflow_publishes_without_attestations_and_says_why(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    runtime.claims.job_workflow_ref = REUSABLE
    warehouse.publishers = [Publisher(workflow="publish-reusable.yml")]
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert "::warning title=No attestations from a reusable workflow::" in run.stdout
    assert sigstore.fulcio.requests == []
    assert sigstore.rekor.requests == []
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert all(not f.attestations for f in warehouse.files.values())
    assert "top-level workflow" in run.summary
    assert_no_secrets(run, *secrets(runtime, warehouse))


def test_attestations_true_in_a_reusable_workflow_attests_and_warehouse_refuses(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    """Anchor #283, but explained: the certificate names the calling workflow."""
    runtime.claims.job_workflow_ref = REUSABLE
    warehouse.publishers = [Publisher(workflow="publish-reusable.yml")]
    run = runner({"repository-url": warehouse.upload_url, "attestations": "true"})

    assert run.returncode == 1, run.log
    assert "::error title=Attestations of example_pkg-1.0.0-py3-none-any.whl refused::" in (
        run.stdout
    )
    assert "Build Config URI" in run.summary
    assert "`attestations: false`" in run.summary
    assert warehouse.files == {}
    assert all(m.burned for m in warehouse.minted)
    assert_no_secrets(run, *secrets(runtime, warehouse))


def test_rekor_and_fulcio_hiccups_are_retried(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    sigstore.fulcio.fail_next = [502]
    sigstore.rekor.fail_next = [503, 503]
    run = runner({"repository-url": warehouse.upload_url})

    assert run.returncode == 0, run.log
    assert "Requesting the signing certificate (Fulcio): HTTP 502" in run.stdout
    assert "(Rekor): HTTP 503 Service Unavailable; retry 1 of 4" in run.stdout
    assert len(sigstore.rekor.entries) == 2
    for path in dists:
        assert predicates(warehouse, path.name) == [PUBLISH_PREDICATE]


def test_rekor_down_for_good_publishes_nothing_and_leaves_no_attestation(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    sigstore.rekor.fail_next = [503] * 10
    run = runner({"repository-url": warehouse.upload_url})

    title = "Sigstore's transparency log (Rekor) unavailable"
    assert_failed_before_upload(run, title, runtime, warehouse)
    assert "failed 5 times" in run.summary
    assert "Nothing was uploaded" in run.summary
    assert attestation_files(dists) == []
    assert not list(dists[0].parent.glob(".*partial"))


def test_fulcio_refusing_for_good_names_it_and_what_it_said(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    sigstore.fulcio.refuse = "There was an error processing the identity token"
    run = runner({"repository-url": warehouse.upload_url})

    title = "Sigstore's certificate authority (Fulcio) refused"
    assert_failed_before_upload(run, title, runtime, warehouse)
    assert "HTTP 403" in run.summary
    assert "There was an error processing the identity token" in run.summary
    assert sigstore.fulcio.count("POST", "/api/v2/signingCert") == 1  # a 403 is not retried
    assert sigstore.rekor.requests == []
    assert attestation_files(dists) == []


def test_a_dry_run_asks_for_the_sigstore_token_and_signs_nothing(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    dists: list[Path],
) -> None:
    run = runner({"repository-url": warehouse.upload_url, "dry-run": "true"})

    assert run.returncode == 0, run.log
    assert "sigstore" in audiences(runtime)
    assert sigstore.fulcio.requests == []
    assert sigstore.rekor.requests == []
    assert attestation_files(dists) == []
    assert "A real run would sign `example_pkg-1.0.0-py3-none-any.whl`" in run.summary
    assert "may have the OIDC token for Sigstore" in run.summary
    assert_no_secrets(run, *secrets(runtime, warehouse))
