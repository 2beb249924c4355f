"""Attestations decided and checked before any request; sigstore's failures sorted for retries.

Signing itself runs end to end against the stand-in Sigstore (`tests/test_e2e_attestations.py`).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import requests

from publisher.attestations import (
    PUBLISH_PREDICATE,
    Signing,
    _transient,
    plan_attestations,
    reusable_workflow_refusal,
    sign_distributions,
)
from publisher.console import Console
from publisher.distributions import find_distributions
from publisher.errors import AttestationError
from publisher.http import RetryPolicy
from publisher.settings import load_settings
from tests.conftest import build_dists
from tests.sigstore_standin import Sigstore, verify_publish_attestation


def attestation(name: str, sha256: str, predicate: str = PUBLISH_PREDICATE) -> str:
    """The shape of a PEP 740 attestation, as far as the checks before signing read it."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": sha256}}],
        "predicateType": predicate,
        "predicate": None,
    }
    return json.dumps(
        {
            "version": 1,
            "verification_material": {
                "certificate": "",
                "transparency_entries": [{"logIndex": "4711"}],
            },
            "envelope": {
                "statement": base64.b64encode(json.dumps(statement).encode()).decode(),
                "signature": "",
            },
        }
    )


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    build_dists(tmp_path / "dist")
    return tmp_path / "dist"


def plan_for(folder: Path, **inputs: str):  # type: ignore[no-untyped-def]
    environ = {f"INPUT_{name.upper().replace('_', '-')}": value for name, value in inputs.items()}
    settings = load_settings({"INPUT_PACKAGES-DIR": str(folder), **environ})
    return plan_attestations(settings, find_distributions(folder).distributions)


def test_trusted_publishing_signs_by_default(folder: Path) -> None:
    plan = plan_for(folder)

    assert (plan.sign, plan.send, plan.explicit) == (True, True, False)


def test_a_password_means_no_attestations_and_only_an_explicit_true_is_told(folder: Path) -> None:
    quiet = plan_for(folder, user="alice", password="pw")
    told = plan_for(folder, user="alice", password="pw", attestations="true")

    assert (quiet.sign, quiet.send, quiet.explicit) == (False, False, False)
    assert (told.sign, told.send, told.explicit) == (False, False, True)
    assert "only with trusted publishing" in told.reason


def test_attestations_false_sends_none(folder: Path) -> None:
    plan = plan_for(folder, attestations="false")

    assert (plan.sign, plan.send) == (False, False)


def test_a_matching_publish_attestation_is_reused(folder: Path) -> None:
    wheel = next(folder.glob("*.whl"))
    sha256 = find_distributions(folder).distributions[0].digests.sha256
    made = folder / f"{wheel.name}.publish.attestation"
    made.write_text(attestation(wheel.name, sha256))

    plan = plan_for(folder)

    assert list(plan.existing) == [wheel.name]
    reused = plan.existing[wheel.name]
    assert (reused.path, reused.log_index, reused.reused) == (made, 4711, True)
    assert reused.log_url == "https://search.sigstore.dev/?logIndex=4711"


def test_a_publish_attestation_of_another_build_is_an_error_that_names_it(folder: Path) -> None:
    wheel = next(folder.glob("*.whl"))
    (folder / f"{wheel.name}.publish.attestation").write_text(attestation(wheel.name, "ab" * 32))

    with pytest.raises(AttestationError) as raised:
        plan_for(folder)

    assert f"`{folder}/{wheel.name}.publish.attestation` attests another build" in str(raised.value)
    assert "ab" * 32 in str(raised.value)


def test_a_publish_attestation_of_another_file_is_an_error(folder: Path) -> None:
    wheel = next(folder.glob("*.whl"))
    sha256 = find_distributions(folder).distributions[0].digests.sha256
    other = "example_pkg-2.0.0-py3-none-any.whl"
    (folder / f"{wheel.name}.publish.attestation").write_text(attestation(other, sha256))

    with pytest.raises(AttestationError, match=f"attests `{other}`"):
        plan_for(folder)


def test_other_kinds_go_up_unchecked_but_must_be_json(folder: Path) -> None:
    wheel = next(folder.glob("*.whl"))
    (folder / f"{wheel.name}.slsa.attestation").write_text('{"anything": 1}')
    assert plan_for(folder).existing == {}

    (folder / f"{wheel.name}.slsa.attestation").write_text("not json")
    with pytest.raises(AttestationError, match=r"slsa\.attestation` is not an attestation"):
        plan_for(folder)


def test_a_reusable_workflow_is_recognised_by_its_other_file() -> None:
    own = "octo-org/pkg/.github/workflows/release.yml@refs/tags/v1"
    called = "octo-org/shared/.github/workflows/publish.yml@refs/heads/main"

    assert reusable_workflow_refusal({"workflow_ref": own, "job_workflow_ref": own}) == ""
    said = reusable_workflow_refusal({"workflow_ref": own, "job_workflow_ref": called})
    assert "reusable workflow `octo-org/shared/.github/workflows/publish.yml`" in said
    assert "top-level workflow" in said


def test_signing_in_this_process_writes_an_attestation_per_file(
    folder: Path, sigstore: Sigstore
) -> None:
    """Where no worker can be forked, `sign_distributions` signs right here."""
    dists = find_distributions(folder).distributions
    console = Console(io.StringIO(), in_actions=False)

    trust_config = sigstore.write_trust_config(folder.parent / "trust.json")
    signing = Signing(trust_config, RetryPolicy(delay=0.01), console)
    attested = sign_distributions(dists, sigstore.identity_token(), signing, existing={})

    assert [a.filename for a in attested] == [d.filename for d in dists]
    assert sorted(a.log_index for a in attested) == [0, 1]  # type: ignore[type-var]
    for dist, made in zip(dists, attested, strict=True):
        assert made.path == folder / f"{dist.filename}.publish.attestation"
        verify_publish_attestation(
            sigstore.trusted_root_json(),
            json.loads(made.path.read_text()),
            dist.filename,
            dist.digests.sha256,
            repository="octo-org/example-pkg",
            workflow="release.yml",
        )


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.reason = "Some reason"
    return requests.HTTPError(response=response)


@pytest.mark.parametrize(
    ("status", "retried"), [(500, True), (503, True), (429, True), (400, False), (401, False)]
)
def test_sigstore_answers_worth_a_retry(status: int, retried: bool) -> None:
    wrapped = RuntimeError("wrapped, as sigstore's clients wrap it")
    wrapped.__cause__ = _http_error(status)

    assert bool(_transient(wrapped)) is retried


def test_connection_failures_and_tuf_errors_are_retried() -> None:
    from tuf.api.exceptions import DownloadHTTPError, SlowRetrievalError

    assert _transient(requests.ConnectionError("refused"))
    assert _transient(SlowRetrievalError())
    assert _transient(DownloadHTTPError("bad gateway", 502))
    assert not _transient(DownloadHTTPError("not found", 404))
    assert not _transient(ValueError("a bug of ours"))
