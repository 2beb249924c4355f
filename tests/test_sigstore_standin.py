"""The Sigstore stand-in, proven with the real clients: sigstore-python signs against it through
pypi-attestations, and a verifier built from its trust root (as Warehouse verifies) accepts what
it should and refuses the rest, with Warehouse's words."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import build_dists
from tests.servers import OidcRuntime
from tests.sigstore_standin import (
    AttestationRejected,
    Sigstore,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    sigstore_fixture,  # noqa: F401 (the `sigstore` fixture)
    verify_publish_attestation,
    verify_upload_attestations,
)


def attest(sigstore: Sigstore, dists: list[Path]) -> list[dict[str, Any]]:
    """What the action does: one signer (one key, one certificate), one attestation per dist."""
    from pypi_attestations import Attestation, Distribution
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    config = ClientTrustConfig.from_json(json.dumps(sigstore.trust_config()))
    context = SigningContext.from_trust_config(config)
    with context.signer(IdentityToken(sigstore.identity_token()), cache=True) as signer:
        return [
            json.loads(Attestation.sign(signer, Distribution.from_file(d)).model_dump_json())
            for d in dists
        ]


def verify(sigstore: Sigstore, attestation: dict[str, Any], dist: Path, **publisher: str) -> None:
    identity = {"repository": "octo-org/example-pkg", "workflow": "release.yml"} | publisher
    verify_publish_attestation(
        sigstore.trusted_root_json(),
        attestation,
        dist.name,
        hashlib.sha256(dist.read_bytes()).hexdigest(),
        **identity,
    )


@pytest.fixture
def dists(tmp_path: Path) -> list[Path]:
    return build_dists(tmp_path / "dist")


def test_attestations_sign_and_verify_as_on_pypi(sigstore: Sigstore, dists: list[Path]) -> None:
    from pypi_attestations import Attestation
    from sigstore._internal.rekor.client import RekorClient
    from sigstore._internal.trust import KeyringPurpose

    attestations = attest(sigstore, dists)

    for attestation, dist in zip(attestations, dists, strict=True):
        verify(sigstore, attestation, dist)
    assert len(sigstore.fulcio.issued) == 1
    assert len(sigstore.rekor.entries) == 2
    claims = Attestation.model_validate(attestations[0]).certificate_claims
    assert claims["1.3.6.1.4.1.57264.1.18"] == (
        "https://github.com/octo-org/example-pkg/.github/workflows/release.yml@refs/tags/v1.0.0"
    )
    assert claims["1.3.6.1.4.1.57264.1.12"] == "https://github.com/octo-org/example-pkg"
    # The final tree (2 entries) proves both, with a checkpoint and SET the trust root verifies.
    keyring = _trusted_root(sigstore).rekor_keyring(KeyringPurpose.VERIFY)
    for entry in sigstore.rekor.entries:
        fetched = RekorClient(sigstore.rekor.url).log.entries.get(uuid=entry.uuid)
        assert fetched._inner.inclusion_proof.tree_size == 2
        fetched._verify(keyring)


def _trusted_root(sigstore: Sigstore) -> Any:
    from sigstore.models import ClientTrustConfig

    return ClientTrustConfig.from_json(json.dumps(sigstore.trust_config())).trusted_root


@pytest.mark.parametrize(
    ("publisher", "reason"),
    [
        (
            {"workflow": "other.yml"},
            "does not match expected Trusted Publisher (other.yml @ octo-org/example-pkg)",
        ),
        (
            {"repository": "octo-org/elsewhere"},
            "Certificate's OIDCSourceRepositoryURI does not match (got "
            "https://github.com/octo-org/example-pkg, expected https://github.com/octo-org/elsewhere)",
        ),
    ],
)
def test_another_publisher_is_refused(
    sigstore: Sigstore, dists: list[Path], publisher: dict[str, str], reason: str
) -> None:
    [attestation] = attest(sigstore, dists[:1])

    with pytest.raises(AttestationRejected) as refused:
        verify(sigstore, attestation, dists[0], **publisher)

    assert refused.value.message.startswith(
        "Could not verify the uploaded artifact using the included attestation: "
        "Verification failed: "
    )
    assert reason in refused.value.message


def test_another_file_is_refused(sigstore: Sigstore, dists: list[Path]) -> None:
    sdist, wheel = dists
    [attestation] = attest(sigstore, [sdist])
    root = sigstore.trusted_root_json()
    identity = {"repository": "octo-org/example-pkg", "workflow": "release.yml"}
    other_digest = hashlib.sha256(b"other bytes").hexdigest()

    with pytest.raises(AttestationRejected, match="subject does not match distribution digest"):
        verify_publish_attestation(root, attestation, sdist.name, other_digest, **identity)
    with pytest.raises(AttestationRejected, match="subject does not match distribution name"):
        verify_publish_attestation(root, attestation, wheel.name, other_digest, **identity)


def test_a_reusable_workflow_attests_as_its_caller(
    sigstore: Sigstore, runtime: OidcRuntime, dists: list[Path]
) -> None:
    """The certificate's SAN is the called workflow, its Build Config URI the caller (#283)."""
    from cryptography import x509

    runtime.claims.job_workflow_ref = (
        "octo-org/shared/.github/workflows/publish.yml@refs/heads/main"
    )
    [attestation] = attest(sigstore, dists[:1])

    verify(sigstore, attestation, dists[0], workflow="release.yml")
    with pytest.raises(AttestationRejected, match=r"\(publish.yml @ octo-org/example-pkg\)"):
        verify(sigstore, attestation, dists[0], workflow="publish.yml")
    leaf = sigstore.fulcio.issued[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"https://github.com/{runtime.claims.job_workflow_ref}"
    ]


def test_malformed_or_tampered_attestations_are_refused(
    sigstore: Sigstore, dists: list[Path]
) -> None:
    [attestation] = attest(sigstore, dists[:1])
    dist = dists[0]
    args = (dist.name, hashlib.sha256(dist.read_bytes()).hexdigest())
    identity = {"repository": "octo-org/example-pkg", "workflow": "release.yml"}
    root = sigstore.trusted_root_json()

    with pytest.raises(AttestationRejected, match=r"^Malformed attestations: "):
        verify_upload_attestations(root, '[{"version": 2}]', *args, **identity)
    with pytest.raises(AttestationRejected, match=r"^Malformed attestations: an empty"):
        verify_upload_attestations(root, "[]", *args, **identity)
    with pytest.raises(AttestationRejected, match="same predicate type"):
        verify_upload_attestations(root, json.dumps([attestation] * 2), *args, **identity)
    tampered = json.loads(json.dumps(attestation))
    tampered["envelope"]["statement"] = base64.b64encode(b"{}").decode()
    with pytest.raises(AttestationRejected, match="Verification failed: DSSE: invalid signature"):
        verify_publish_attestation(root, tampered, *args, **identity)
    # Another Sigstore's trust root does not know this one's CA.
    other = Sigstore(sigstore.runtime)
    try:
        with pytest.raises(AttestationRejected, match="Verification failed: "):
            verify_publish_attestation(other.trusted_root_json(), attestation, *args, **identity)
    finally:
        other.close()


def test_fulcio_unavailable_then_serving(sigstore: Sigstore, dists: list[Path]) -> None:
    from sigstore._internal.fulcio.client import FulcioClientError

    sigstore.fulcio.fail_next = [503]
    with pytest.raises(FulcioClientError):
        attest(sigstore, dists[:1])
    [attestation] = attest(sigstore, dists[:1])  # the caller's retry

    verify(sigstore, attestation, dists[0])
    assert sigstore.fulcio.count("POST", "/api/v2/signingCert") == 2
    assert len(sigstore.fulcio.issued) == 1


def test_fulcio_refuses_a_token_without_workflow_sha(
    sigstore: Sigstore, runtime: OidcRuntime, dists: list[Path]
) -> None:
    from sigstore._internal.fulcio.client import FulcioClientError

    runtime.claims.omit = ("workflow_sha",)
    with pytest.raises(FulcioClientError):
        attest(sigstore, dists[:1])

    assert sigstore.fulcio.refusals == ["missing claims: ['workflow_sha']"]
    assert sigstore.fulcio.issued == []
    assert sigstore.rekor.entries == []


def test_fulcio_refusing_for_good(sigstore: Sigstore) -> None:
    sigstore.fulcio.refuse = "Unsupported issuer"
    answer = requests.post(f"{sigstore.fulcio.url}/api/v2/signingCert", json={}, timeout=10)
    assert answer.status_code == 403
    assert answer.json()["message"] == "Unsupported issuer"


def test_rekor_unavailable_then_serving(sigstore: Sigstore, dists: list[Path]) -> None:
    from sigstore._internal.rekor import RekorClientError

    sigstore.rekor.fail_next = [503]
    with pytest.raises(RekorClientError):
        attest(sigstore, dists[:1])
    [attestation] = attest(sigstore, dists[:1])

    verify(sigstore, attestation, dists[0])
    assert len(sigstore.rekor.entries) == 1


def test_rekor_refuses_an_envelope_its_verifier_did_not_sign(
    sigstore: Sigstore, runtime: OidcRuntime
) -> None:
    """As real Rekor: the DSSE signature is checked against the proposed certificate."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    leaf = sigstore.fulcio.issue(runtime.claims.as_dict("sigstore"), key().public_key())
    payload = b'{"_type": "https://in-toto.io/Statement/v1"}'
    pae = b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload)
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [
            {"sig": base64.b64encode(key().sign(pae, ec.ECDSA(hashes.SHA256()))).decode()}
        ],
    }
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    proposed = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "proposedContent": {
                "envelope": json.dumps(envelope),
                "verifiers": [base64.b64encode(pem).decode()],
            }
        },
    }

    answer = requests.post(f"{sigstore.rekor.url}/api/v1/log/entries", json=proposed, timeout=10)

    assert answer.status_code == 400
    assert "could not verify envelope signatures" in answer.json()["message"]
    assert sigstore.rekor.entries == []


def test_inclusion_proofs_verify_for_every_tree_shape() -> None:
    """RFC 6962 audit paths, checked by sigstore-python's own chaining, for trees of 1 to 17."""
    from sigstore._internal.merkle import (
        _chain_border_right,
        _chain_inner,
        _decomp_inclusion_proof,
    )

    leaves = [leaf_hash(str(i).encode()) for i in range(17)]
    for size in range(1, len(leaves) + 1):
        root = merkle_root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(index, leaves[:size])
            inner, border = _decomp_inclusion_proof(index, size)
            assert len(proof) == inner + border
            chained = _chain_inner(leaves[index], proof[:inner], index)
            assert _chain_border_right(chained, proof[inner:]) == root
