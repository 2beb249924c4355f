"""A stand-in Sigstore on 127.0.0.1 (Fulcio, Rekor v1 and the trust root naming them), and
Warehouse's check of a PEP 740 publish attestation, so that unmodified sigstore-python and
pypi-attestations sign and verify against it as against the public instance.

What is real: the JWT check against the OIDC runtime's JWKS, the CSR's proof of possession, a
root -> intermediate -> leaf chain in Fulcio's X.509 profile for a GitHub token (SAN, key
usages, the 1.3.6.1.4.1.57264.1.* extensions encoded as Fulcio encodes them), an embedded SCT
signed by a CT log key over the precertificate (RFC 6962), Rekor's `dsse` 0.0.1 entries stored
as Rekor stores them (hashes and signatures, not the envelope) after checking the envelope's
signature, an RFC 6962 Merkle tree over every entry, signed checkpoints (signed notes) and
signed entry timestamps, and the trust root that names all their keys.

What is not: there is no CT log to query, no TUF, no timestamp authority and no Rekor v2; keys
live in memory, one EC P-256 key per role per `Sigstore`; errors carry real Fulcio's and
Rekor's status codes and messages, but only the few this project can meet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers import GITHUB_ISSUER, OidcRuntime, StandIn, _json

if TYPE_CHECKING:
    from pypi_attestations import Attestation
    from sigstore.models import TrustedRoot
    from sigstore.verify.policy import VerificationPolicy

Answer = tuple[int, dict[str, str], bytes]

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
EC_P256 = "PKIX_ECDSA_P256_SHA_256"
PUBLISH_V1 = "https://docs.pypi.org/attestations/publish/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"

# The claims Fulcio's GitHub provider reads; a token lacking any of them gets no certificate.
FULCIO_GITHUB_CLAIMS = (
    "job_workflow_ref",
    "job_workflow_sha",
    "sha",
    "event_name",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "repository_visibility",
    "workflow",
    "workflow_ref",
    "workflow_sha",
    "ref",
    "runner_environment",
    "run_id",
    "run_attempt",
)
# Real Fulcio's words: the cause of a refused token is logged, never sent.
INVALID_IDENTITY_TOKEN = "There was an error processing the identity token"
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 504: 4}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical_json(value: Any) -> bytes:
    """RFC 8785 (what Rekor signs), for values made only of ASCII strings, ints, lists and
    objects: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class LogKey:
    """A log's signing key (CT log or Rekor); its id is sha256 of its DER SPKI (RFC 6962)."""

    private: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> LogKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def spki(self) -> bytes:
        return _spki(self.private.public_key())

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.spki).digest()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, ec.ECDSA(hashes.SHA256()))

    def trusted_root_entry(self, base_url: str, start: datetime) -> dict[str, Any]:
        """A `TransparencyLogInstance` of the trust root."""
        return {
            "baseUrl": base_url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": _b64(self.spki),
                "keyDetails": EC_P256,
                "validFor": {"start": _time(start)},
            },
            "logId": {"keyId": _b64(self.key_id)},
        }


@dataclass(frozen=True)
class CertificateAuthority:
    """Fulcio's root and intermediate, with the extensions a WebPKI-strict verifier asks for."""

    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate

    @classmethod
    def generate(cls, start: datetime) -> CertificateAuthority:
        root_key = ec.generate_private_key(ec.SECP256R1())
        key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name("sigstore")
        root = _ca_builder(root_name, root_name, root_key.public_key(), root_key, start, 1)
        intermediate = _ca_builder(
            _name("sigstore-intermediate"), root_name, key.public_key(), root_key, start, 0
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        return cls(
            root.sign(root_key, hashes.SHA256()),
            key,
            intermediate.sign(root_key, hashes.SHA256()),
        )

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.intermediate, self.root]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    start: datetime,
    path_length: int,
) -> x509.CertificateBuilder:
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


def fulcio_extensions(claims: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The 1.3.6.1.4.1.57264.1.* extensions Fulcio writes for a GitHub Actions token: .1-.6
    (deprecated) as the raw string, .8 on as a DER UTF8String."""
    github = "https://github.com"
    raw = {
        1: claims["iss"],
        2: claims["event_name"],
        3: claims["sha"],
        4: claims["workflow"],
        5: claims["repository"],
        6: claims["ref"],
    }
    der = {
        8: claims["iss"],
        9: f"{github}/{claims['job_workflow_ref']}",
        10: claims["job_workflow_sha"],
        11: claims["runner_environment"],
        12: f"{github}/{claims['repository']}",
        13: claims["sha"],
        14: claims["ref"],
        15: claims["repository_id"],
        16: f"{github}/{claims['repository_owner']}",
        17: claims["repository_owner_id"],
        18: f"{github}/{claims['workflow_ref']}",
        19: claims["workflow_sha"],
        20: claims["event_name"],
        21: f"{github}/{claims['repository']}/actions/runs/{claims['run_id']}"
        f"/attempts/{claims['run_attempt']}",
        22: claims["repository_visibility"],
    }
    return [(f"1.3.6.1.4.1.57264.1.{n}", str(v).encode()) for n, v in raw.items()] + [
        (f"1.3.6.1.4.1.57264.1.{n}", asn1.encode_der(str(v))) for n, v in der.items()
    ]


def embedded_sct(
    ct_log: LogKey, issuer: x509.Certificate, tbs: bytes, timestamp_ms: int
) -> x509.UnrecognizedExtension:
    """The SCT list extension for a precertificate whose TBS (without this extension) is `tbs`:
    the CT log signs (version, type, timestamp, precert_entry, issuer key hash, TBS, no
    extensions), RFC 6962 section 3.2."""
    issuer_key_hash = hashlib.sha256(_spki(issuer.public_key())).digest()
    signed = (
        struct.pack("!BBQH", 0, 0, timestamp_ms, 1)
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack("!H", 0)
    )
    signature = ct_log.sign(signed)
    sct = (
        struct.pack("!B", 0)
        + ct_log.key_id
        + struct.pack("!QH", timestamp_ms, 0)
        + struct.pack("!BBH", 4, 3, len(signature))  # SHA-256, ECDSA
        + signature
    )
    sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
    return x509.UnrecognizedExtension(SCT_LIST_OID, asn1.encode_der(sct_list))


def _grpc_error(status: int, message: str) -> Answer:
    """An error as Fulcio's gRPC gateway answers it."""
    return _json(status, {"code": GRPC_CODES.get(status, 2), "message": message, "details": []})


class Fulcio(StandIn):
    """Fulcio's v2 API: `POST /api/v2/signingCert` and `GET /api/v2/trustBundle`."""

    def __init__(self, runtime: OidcRuntime) -> None:
        super().__init__()
        self.created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        self.ca = CertificateAuthority.generate(self.created)
        self.ct_log = LogKey.generate()
        self.lifetime = timedelta(minutes=10)
        self.issued: list[x509.Certificate] = []
        self.refusals: list[str] = []  # why each refused request was refused (Fulcio logs it)
        self.fail_next: list[int] = []  # statuses to answer with before serving
        self.refuse: str | None = None  # refuse every request, with this message
        self.refuse_status = 403
        self._jwks = jwt.PyJWKClient(f"{runtime.url}/.well-known/jwks")

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        route = urlsplit(path).path
        with self.lock:
            if self.fail_next:
                return _grpc_error(self.fail_next.pop(0), "upstream service unavailable")
        if self.refuse is not None:
            return self._refused(self.refuse_status, self.refuse, self.refuse)
        if route == "/api/v2/trustBundle" and method == "GET":
            chain = [c.public_bytes(serialization.Encoding.PEM).decode() for c in self.ca.chain]
            return _json(200, {"chains": [{"certificates": chain}]})
        if route == "/api/v2/signingCert" and method == "POST":
            return self._signing_cert(headers.get("authorization", ""), body)
        return _grpc_error(404, "Not Found")

    def _refused(self, status: int, message: str, reason: str) -> Answer:
        with self.lock:
            self.refusals.append(reason)
        return _grpc_error(status, message)

    def _signing_cert(self, authorization: str, body: bytes) -> Answer:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self._refused(401, INVALID_IDENTITY_TOKEN, "no bearer token")
        try:
            claims = jwt.decode(
                token,
                self._jwks.get_signing_key_from_jwt(token).key,
                algorithms=["RS256"],
                audience="sigstore",
                issuer=GITHUB_ISSUER,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as e:
            return self._refused(401, INVALID_IDENTITY_TOKEN, f"invalid token: {e}")
        missing = [name for name in FULCIO_GITHUB_CLAIMS if not claims.get(name)]
        if missing:
            return self._refused(401, INVALID_IDENTITY_TOKEN, f"missing claims: {missing}")
        try:
            pem = base64.b64decode(json.loads(body)["certificateSigningRequest"])
            csr = x509.load_pem_x509_csr(pem)
        except (ValueError, KeyError, TypeError) as e:
            message = "The certificate signing request could not be parsed"
            return self._refused(400, message, f"bad CSR: {e}")
        if not csr.is_signature_valid:
            message = "The signature supplied in the request could not be verified"
            return self._refused(400, message, "no proof of possession")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            message = "The public key supplied in the request is insecure"
            return self._refused(400, message, "not an EC key")
        leaf = self.issue(claims, public_key)
        chain = [leaf, *self.ca.chain]
        pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in chain]
        return _json(200, {"signedCertificateEmbeddedSct": {"chain": {"certificates": pems}}})

    def issue(
        self, claims: Mapping[str, Any], public_key: ec.EllipticCurvePublicKey
    ) -> x509.Certificate:
        """A 10-minute code-signing certificate for a GitHub Actions token's claims."""
        now = datetime.now(UTC).replace(microsecond=0)
        issuer = self.ca.intermediate
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        san = x509.UniformResourceIdentifier(f"https://github.com/{claims['job_workflow_ref']}")
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + self.lifetime)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.ca.intermediate_key.public_key()
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        )
        for oid, value in fulcio_extensions(claims):
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
            )
        # The precertificate is the certificate without its SCT: the CT log signs its TBS.
        precertificate = builder.sign(self.ca.intermediate_key, hashes.SHA256())
        sct = embedded_sct(self.ct_log, issuer, precertificate.tbs_certificate_bytes, _ms())
        leaf = builder.add_extension(sct, critical=False).sign(
            self.ca.intermediate_key, hashes.SHA256()
        )
        with self.lock:
            self.issued.append(leaf)
        return leaf


def _ms() -> int:
    # Whole seconds: sigstore-python turns the SCT's time into a float and back to ms.
    return int(time.time()) * 1000


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (RFC 6962 section 2.1)."""
    return 1 << ((size - 1).bit_length() - 1)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves): the audit path, lowest level first (RFC 6962 section 2.1.1)."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_proof(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*inclusion_proof(index - k, leaves[k:]), merkle_root(leaves[:k])]


@dataclass(frozen=True)
class LogEntry:
    """One Rekor entry: `body` is the canonical JSON Rekor stores, which the leaf hash covers."""

    uuid: str
    body: bytes
    integrated_time: int
    log_index: int
    signed_entry_timestamp: str


def _rekor_error(status: int, message: str) -> Answer:
    return _json(status, {"code": status, "message": message})


class Rekor(StandIn):
    """Rekor's v1 API: `POST /api/v1/log/entries` (dsse 0.0.1), `GET /api/v1/log`, and
    `GET /api/v1/log/entries/<uuid>` or `?logIndex=N` with a proof against the current tree."""

    def __init__(self) -> None:
        super().__init__()
        self.key = LogKey.generate()
        self.tree_id = secrets.randbits(62)
        self.name = urlsplit(self.url).netloc  # real Rekor: its host name
        self.entries: list[LogEntry] = []
        self.fail_next: list[int] = []  # statuses to answer with before serving

    @property
    def log_id(self) -> str:
        return self.key.key_id.hex()

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Answer:
        parts = urlsplit(path)
        with self.lock:
            if self.fail_next:
                return _rekor_error(self.fail_next.pop(0), "service unavailable")
        if parts.path == "/api/v1/log" and method == "GET":
            return _json(200, self.log_info())
        if parts.path == "/api/v1/log/publicKey" and method == "GET":
            pem = self.key.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return 200, {"content-type": "application/x-pem-file"}, pem
        if parts.path == "/api/v1/log/entries" and method == "POST":
            return self._create(body)
        if parts.path.startswith("/api/v1/log/entries") and method == "GET":
            return self._get(parts.path.rpartition("/entries")[2].strip("/"), parts.query)
        return _rekor_error(404, "Not Found")

    def log_info(self) -> dict[str, Any]:
        with self.lock:
            leaves = [leaf_hash(e.body) for e in self.entries]
        root = merkle_root(leaves)
        return {
            "rootHash": root.hex(),
            "treeSize": len(leaves),
            "signedTreeHead": self.checkpoint(len(leaves), root),
            "treeID": str(self.tree_id),
            "inactiveShards": [],
        }

    def checkpoint(self, size: int, root: bytes) -> str:
        """A signed note: origin, size, root hash, timestamp; then the key hint and signature."""
        note = f"{self.name} - {self.tree_id}\n{size}\n{_b64(root)}\nTimestamp: {time.time_ns()}\n"
        signature = self.key.key_id[:4] + self.key.sign(note.encode())
        return f"{note}\n\u2014 {self.name} {_b64(signature)}\n"

    def _create(self, body: bytes) -> Answer:
        try:
            stored = self._stored_body(json.loads(body))
        except (ValueError, KeyError, TypeError) as e:
            return _rekor_error(400, f"error processing entry: {e}")
        canonical = _canonical_json(stored)
        with self.lock:
            for entry in self.entries:
                if entry.body == canonical:
                    return _rekor_error(
                        409,
                        "an equivalent entry already exists in the transparency log with "
                        f"UUID {entry.uuid}",
                    )
            index = len(self.entries)
            integrated_time = int(time.time())
            promise = {
                "body": _b64(canonical),
                "integratedTime": integrated_time,
                "logID": self.log_id,
                "logIndex": index,
            }
            entry = LogEntry(
                uuid=f"{self.tree_id:016x}{leaf_hash(canonical).hex()}",
                body=canonical,
                integrated_time=integrated_time,
                log_index=index,
                signed_entry_timestamp=_b64(self.key.sign(_canonical_json(promise))),
            )
            self.entries.append(entry)
        status, headers, payload = _json(201, self.response(entry))
        headers |= {"location": f"/api/v1/log/entries/{entry.uuid}", "etag": entry.uuid}
        return status, headers, payload

    def _stored_body(self, proposed: Mapping[str, Any]) -> dict[str, Any]:
        """What Rekor keeps of a proposed dsse 0.0.1 entry, once each signature is verified by
        one of the given verifiers: hashes of the envelope and payload, and the signatures."""
        if (proposed.get("kind"), proposed.get("apiVersion")) != ("dsse", "0.0.1"):
            raise ValueError("this stand-in logs dsse 0.0.1 entries only")
        content = proposed["spec"]["proposedContent"]
        envelope_text: str = content["envelope"]
        envelope = json.loads(envelope_text)
        payload = base64.b64decode(envelope["payload"])
        payload_type: str = envelope["payloadType"]
        pae = b"DSSEv1 %d %s %d %s" % (
            len(payload_type),
            payload_type.encode(),
            len(payload),
            payload,
        )
        verifiers = [
            x509.load_pem_x509_certificate(base64.b64decode(v)) for v in content["verifiers"]
        ]
        signatures = []
        for item in envelope["signatures"]:
            signature = base64.b64decode(item["sig"])
            verifier = next((v for v in verifiers if _verifies(v, signature, pae)), None)
            if verifier is None:
                raise ValueError("could not verify envelope signatures")
            signatures.append(
                {
                    "signature": _b64(signature),
                    "verifier": _b64(verifier.public_bytes(serialization.Encoding.PEM)),
                }
            )
        if not signatures:
            raise ValueError("envelope has no signatures")
        return {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(envelope_text.encode()).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": signatures,
            },
        }

    def _get(self, uuid: str, query: str) -> Answer:
        log_index = parse_qs(query).get("logIndex", [""])[0]
        with self.lock:
            found = [
                e
                for e in self.entries
                if (uuid and e.uuid.endswith(uuid[-64:])) or str(e.log_index) == log_index
            ]
        if not found:
            return _rekor_error(404, "Entry not found")
        return _json(200, self.response(found[0]))

    def response(self, entry: LogEntry, tree_size: int | None = None) -> dict[str, Any]:
        """The entry as Rekor answers it, with a proof against the tree of `tree_size`
        entries (default: all of them)."""
        with self.lock:
            leaves = [leaf_hash(e.body) for e in self.entries[: tree_size or len(self.entries)]]
        root = merkle_root(leaves)
        proof = inclusion_proof(entry.log_index, leaves)
        return {
            entry.uuid: {
                "body": _b64(entry.body),
                "integratedTime": entry.integrated_time,
                "logID": self.log_id,
                "logIndex": entry.log_index,
                "verification": {
                    "signedEntryTimestamp": entry.signed_entry_timestamp,
                    "inclusionProof": {
                        "logIndex": entry.log_index,
                        "treeSize": len(leaves),
                        "rootHash": root.hex(),
                        "hashes": [h.hex() for h in proof],
                        "checkpoint": self.checkpoint(len(leaves), root),
                    },
                },
            }
        }


def _verifies(certificate: x509.Certificate, signature: bytes, data: bytes) -> bool:
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class Sigstore:
    """A Fulcio and a Rekor, and the client trust configuration that names them."""

    def __init__(self, runtime: OidcRuntime) -> None:
        self.runtime = runtime
        self.fulcio = Fulcio(runtime)
        self.rekor = Rekor()

    def close(self) -> None:
        self.fulcio.close()
        self.rekor.close()

    def identity_token(self) -> str:
        """A `sigstore`-audience JWT from the runtime, as `id` gets it in a job."""
        answer = requests.get(
            f"{self.runtime.request_url}&audience=sigstore",
            headers={"Authorization": f"bearer {self.runtime.request_token}"},
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["value"])

    def trusted_root(self) -> dict[str, Any]:
        start = self.fulcio.created
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [self.rekor.key.trusted_root_entry(self.rekor.url, start)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sigstore.dev", "commonName": "sigstore"},
                    "uri": self.fulcio.url,
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))}
                            for c in self.fulcio.ca.chain
                        ]
                    },
                    "validFor": {"start": _time(start)},
                }
            ],
            "ctlogs": [self.fulcio.ct_log.trusted_root_entry(self.fulcio.url, start)],
            "timestampAuthorities": [],
        }

    def trusted_root_json(self) -> str:
        return json.dumps(self.trusted_root())

    def trust_config(self) -> dict[str, Any]:
        """What `ClientTrustConfig.from_json` reads: the trust root and where to sign (Rekor v1
        only, no timestamp authority)."""
        start = _time(self.fulcio.created)

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": start},
                "operator": "sigstore stand-in",
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.fulcio.url)],
                "oidcUrls": [service(self.runtime.url)],
                "rekorTlogUrls": [service(self.rekor.url)],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaUrls": [],
                "tsaConfig": {"selector": "ANY"},
            },
        }

    def write_trust_config(self, path: Path) -> Path:
        path.write_text(json.dumps(self.trust_config(), indent=2))
        return path


@pytest.fixture(name="sigstore")
def sigstore_fixture(runtime: OidcRuntime) -> Iterator[Sigstore]:
    stand_in = Sigstore(runtime)
    yield stand_in
    stand_in.close()


class AttestationRejected(Exception):
    """Warehouse refused an attestation; the message is Warehouse's, without the
    `Invalid attestations supplied during upload: ` that its 400 puts first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def verify_upload_attestations(
    trusted_root_json: str,
    form_value: str,
    filename: str,
    sha256: str,
    *,
    repository: str,
    workflow: str,
) -> None:
    """Warehouse's check of an upload's `attestations` form field (a JSON list), for a GitHub
    trusted publisher; the trust root is the stand-in's instead of the public one."""
    from pydantic import TypeAdapter, ValidationError
    from pypi_attestations import Attestation

    try:
        attestations = TypeAdapter(list[Attestation]).validate_json(form_value)
    except ValidationError as e:
        raise AttestationRejected(f"Malformed attestations: {e}") from e
    if not attestations:
        raise AttestationRejected(
            "Malformed attestations: an empty attestation set is not permitted"
        )
    if len(attestations) > 2:
        raise AttestationRejected("A maximum of 2 attestations per file are supported")
    seen: set[str] = set()
    for attestation in attestations:
        predicate_type = _verify(
            trusted_root_json, attestation, filename, sha256, repository, workflow
        )
        if predicate_type not in (PUBLISH_V1, SLSA_PROVENANCE_V1):
            raise AttestationRejected(
                f"Attestation with unsupported predicate type: {predicate_type}"
            )
        if predicate_type in seen:
            raise AttestationRejected(
                "Multiple attestations for the same file with the same predicate type "
                f"({predicate_type}) are not supported"
            )
        seen.add(predicate_type)


def verify_publish_attestation(
    trusted_root_json: str,
    attestation: Mapping[str, Any],
    filename: str,
    sha256: str,
    *,
    repository: str,
    workflow: str,
) -> None:
    """Warehouse's check of one attestation (a parsed `<dist>.publish.attestation`)."""
    verify_upload_attestations(
        trusted_root_json,
        json.dumps([attestation]),
        filename,
        sha256,
        repository=repository,
        workflow=workflow,
    )


def _verify(
    trusted_root_json: str,
    attestation: Attestation,
    filename: str,
    sha256: str,
    repository: str,
    workflow: str,
) -> str:
    """`Attestation.verify`, with the stand-in's trust root; its errors worded as Warehouse
    words them. Returns the predicate type."""
    from pypi_attestations import GitHubPublisher, VerificationError
    from sigstore.verify import Verifier

    policy = GitHubPublisher(repository=repository, workflow=workflow)._as_policy()
    verifier = Verifier(trusted_root=_trusted_root(trusted_root_json))
    try:
        return _verified_predicate_type(verifier, policy, attestation, filename, sha256)
    except VerificationError as e:
        raise AttestationRejected(
            f"Could not verify the uploaded artifact using the included attestation: {e}"
        ) from e
    except Exception as e:
        raise AttestationRejected(
            f"Unknown error while trying to verify included attestations: {e}"
        ) from e


def _trusted_root(text: str) -> TrustedRoot:
    """A trust root, alone or inside a client trust configuration."""
    from sigstore.models import ClientTrustConfig, TrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage

    if "clienttrustconfig" in json.loads(text).get("mediaType", ""):
        return ClientTrustConfig.from_json(text).trusted_root
    return TrustedRoot(TrustedRootMessage.from_json(text))


def _verified_predicate_type(
    verifier: Any, policy: VerificationPolicy, attestation: Attestation, filename: str, sha256: str
) -> str:
    """The body of pypi-attestations' `Attestation.verify` (0.0.30), step for step."""
    from pydantic import ValidationError
    from pypi_attestations import AttestationType, VerificationError
    from pypi_attestations._impl import _check_dist_filename
    from sigstore.dsse import Envelope, _Statement
    from sigstore.errors import VerificationError as SigstoreVerificationError

    bundle = attestation.to_bundle()
    try:
        type_, payload = verifier.verify_dsse(bundle, policy)
    except SigstoreVerificationError as err:
        raise VerificationError(str(err)) from err
    if type_ != Envelope._TYPE:
        raise VerificationError(f"expected JSON envelope, got {type_}")
    try:
        statement = _Statement.model_validate_json(payload)
    except ValidationError as e:
        raise VerificationError(f"invalid statement: {e!s}") from e
    if len(statement.subjects) != 1:
        raise VerificationError("too many subjects in statement (must be exactly one)")
    subject = statement.subjects[0]
    if not subject.name:
        raise VerificationError("invalid subject: missing name")
    try:
        parsed_subject_name = _check_dist_filename(subject.name)
    except ValueError as e:
        raise VerificationError(f"invalid subject: {e!s}") from e
    if parsed_subject_name != _check_dist_filename(filename):
        raise VerificationError(
            f"subject does not match distribution name: {subject.name} != {filename}"
        )
    digest = subject.digest.root.get("sha256")
    if digest is None or digest != sha256:
        raise VerificationError("subject does not match distribution digest")
    try:
        AttestationType(statement.predicate_type)
    except ValueError as e:
        raise VerificationError(f"unknown attestation type: {statement.predicate_type}") from e
    return str(statement.predicate_type)
