"""A private certificate authority and a real proxy, for the tests of corporate networks.

`make_authority()` makes a root CA with cryptography, as a company has one; it signs server
certificates for 127.0.0.1 (an IP SAN, which Python checks) and localhost, so a stand-in server
can speak https (`StandIn(tls=authority.server_context())`). `Proxy` runs proxy.py, a real
forwarding proxy from PyPI, in a process of its own; given an authority, it intercepts TLS and
re-signs every site's certificate with it, as a corporate proxy does. Its access log tells the
tests which requests went through it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def name(self) -> str:
        """The CA's subject as RFC 4514 writes it: what an error names as the issuer."""
        return self.certificate.subject.rfc4514_string()

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        """The CA's certificate, PEM, as a user commits it to the repository."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.pem)
        return path

    def write_key(self, path: Path) -> Path:
        path.write_bytes(_private_pem(self.key))
        return path

    def issue(self, hosts: tuple[str, ...] = HOSTS) -> tuple[bytes, bytes]:
        """A server certificate for `hosts`, with its key: (certificate PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        certificate = (
            _builder(_name(hosts[0]), self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM), _private_pem(key)

    def server_context(self, hosts: tuple[str, ...] = HOSTS) -> ssl.SSLContext:
        """A server-side TLS context with a certificate for `hosts` signed by this CA."""
        certificate, key = self.issue(hosts)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as directory:  # load_cert_chain reads only files
            (Path(directory) / "cert.pem").write_bytes(certificate)
            (Path(directory) / "key.pem").write_bytes(key)
            context.load_cert_chain(Path(directory) / "cert.pem", Path(directory) / "key.pem")
        return context


def make_authority(
    common_name: str = "Publisher Test Root CA", organization: str = "Example Corp"
) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    certificate = (
        _builder(subject, subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class Proxy:
    """proxy.py on 127.0.0.1 in a process of its own, until `close()`.

    `intercept`: re-sign every https site with this CA (the client must trust it), verifying the
    sites themselves against `upstream_ca`. Without it, https goes through as a CONNECT tunnel
    the proxy cannot see into. Either way `requests()` lists what it was asked for, recorded by
    the `RecordRequests` plugin below.
    """

    def __init__(
        self,
        directory: Path,
        *,
        intercept: Authority | None = None,
        upstream_ca: Path | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.record = directory / "requests.txt"
        self.record.write_text("")
        port_file = directory / "port"
        command = [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--num-acceptors",
            "1",
            "--threaded",
            "--log-level",
            "INFO",
            "--log-file",
            str(directory / "proxy.log"),
            "--plugins",
            f"{__name__}.RecordRequests",
            "--data-dir",
            str(directory / "data"),
        ]
        if intercept is not None:
            signing_key = directory / "signing-key.pem"
            signing_key.write_bytes(_private_pem(ec.generate_private_key(ec.SECP256R1())))
            (directory / "certificates").mkdir(exist_ok=True)
            command += [
                "--ca-cert-file",
                str(intercept.write(directory / "proxy-ca.pem")),
                "--ca-key-file",
                str(intercept.write_key(directory / "proxy-ca-key.pem")),
                "--ca-signing-key-file",
                str(signing_key),
                "--ca-cert-dir",
                str(directory / "certificates"),
            ]
            if upstream_ca is not None:
                command += ["--ca-file", str(upstream_ca)]
        root = str(Path(__file__).resolve().parent.parent)
        with (directory / "stderr.txt").open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=os.environ | {"PYTHONPATH": root, RECORD_VARIABLE: str(self.record)},
            )
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(
                    "proxy.py did not start: " + (directory / "stderr.txt").read_text()
                )
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def requests(self) -> list[tuple[str, str, str]]:
        """(method, host:port, path) of every request it was asked to forward, in order: a
        CONNECT (a tunnel, path empty), then what went inside it when it intercepts."""
        lines = self.record.read_text().splitlines()
        return [(m, h, p) for m, h, p in (line.split(" ", 2) for line in lines)]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


RECORD_VARIABLE = "PUBLISHER_TEST_PROXY_RECORD"


def __getattr__(name: str) -> Any:
    """`RecordRequests`, made on first use: only the proxy's process imports proxy.py."""
    if name == "RecordRequests":
        return _record_requests_plugin()
    raise AttributeError(name)


def _record_requests_plugin() -> type:
    from proxy.http.parser import HttpParser
    from proxy.http.proxy import HttpProxyBasePlugin

    class RecordRequests(HttpProxyBasePlugin):
        """Appends "METHOD host:port path" for every request, intercepted ones included."""

        def handle_client_request(self, request: HttpParser) -> HttpParser:
            method = (request.method or b"?").decode()
            if method == "CONNECT":
                host, path = f"{(request.host or b'').decode()}:{request.port}", ""
            else:
                host = request.header(b"host").decode() if request.has_header(b"host") else ""
                path = (request.path or b"/").decode()
                if path.startswith("http://"):  # a plain-http request names the whole URL
                    _, _, rest = path.partition("//")
                    host, _, path = rest.partition("/")
                    path = "/" + path
            with open(os.environ[RECORD_VARIABLE], "a", encoding="utf-8") as record:
                record.write(f"{method} {host} {path}\n")
            return request

    return RecordRequests
