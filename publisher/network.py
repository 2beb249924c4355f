"""Corporate networks: a proxy that inspects TLS, and the certificate authority it signs with.

Self-hosted runners often reach the internet only through a proxy, and many such proxies
re-sign every site's certificate with the company's own CA. Three things make the action work
there, and this module holds them:

- The proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, in either case; the runner
  passes its own proxy settings to the container in them) are honoured by every request:
  requests (ours, twine's upload, sigstore's Fulcio and Rekor clients) and tuf's urllib3
  fetcher read them themselves; the OIDC token request is ours
  (`publisher.trusted_publishing`), because `id` makes it with a bare urllib3 request that
  ignores them.
- The certificates named by `ca-certificates`, and any bundle the step names in
  `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` or `SSL_CERT_FILE`, are ADDED to the default roots
  (certifi's): one bundle file, which `REQUESTS_CA_BUNDLE` (requests) and `SSL_CERT_FILE`
  (urllib3 and ssl used directly: tuf, `id`) then name. Left alone, a bundle in those variables
  would replace the default roots, and every public host reached without the proxy would stop
  verifying. This is set in `os.environ` once, before anything connects and before the signing
  worker forks, so every library and both processes see it.
- A certificate that still does not verify is an error that names the host, who issued the
  certificate it presented (read again without verifying, through the same proxy), and the
  input to set. It is never retried: it does not get better by waiting.

Paths: inside the action's container the workspace is `/github/workspace`, while users write
`${{ github.workspace }}/ca.pem`, the runner's path on the host. See `locate`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

from publisher.errors import CertificateNotTrusted, InputError, PublishError

if TYPE_CHECKING:
    import socket
    import ssl

    from publisher.console import Console

INPUT = "ca-certificates"
BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
PEM_HINT = (
    "Give PEM certificates (text beginning with `-----BEGIN CERTIFICATE-----`); a DER file "
    "(`.cer`, `.der`) converts with `openssl x509 -inform der -in ca.cer -out ca.pem`."
)


# --- where the files are ------------------------------------------------------------------------


def certificate_paths(value: str, environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The `ca-certificates` input: PEM files separated by whitespace or newlines, each one
    checked now (it exists, it can be read, it holds certificates OpenSSL accepts)."""
    paths = []
    for part in value.split():
        path = locate(part, environ)
        try:
            _read_certificates(path)
        except ValueError as e:
            raise InputError(INPUT, value, f"{e} {_WHERE}") from e
        paths.append(path)
    return tuple(paths)


_WHERE = (
    "Only the workspace is visible inside the action's container: commit the CA's certificate "
    "to the repository (or write it into the workspace in an earlier step) and give its path "
    "relative to the workspace, such as `certs/corporate-ca.pem`."
)


def locate(text: str, environ: Mapping[str, str]) -> Path:
    """Where a path the user wrote is, inside the action's container.

    A relative path is relative to the workspace (the working directory). An absolute path is
    used as it is when it exists. Otherwise it may be written the way the runner's host sees
    the workspace (`${{ github.workspace }}/certs/ca.pem`, that is
    `/home/runner/work/REPO/REPO/certs/ca.pem`), which the container sees at
    `$GITHUB_WORKSPACE` (`/github/workspace`). The runner rewrites such a prefix itself when
    a whole input starts with it, but not in the second line of a list. The host's workspace
    is `$RUNNER_WORKSPACE/<repository name>` (the runner lays out `_work/REPO/REPO`, and passes
    RUNNER_WORKSPACE unchanged): a path under it is mapped onto `$GITHUB_WORKSPACE`.
    """
    path = Path(text)
    if not path.is_absolute() or path.exists():
        return path
    host = host_workspace(environ)
    workspace = environ.get("GITHUB_WORKSPACE", "")
    if host is not None and workspace and PurePosixPath(text).is_relative_to(host):
        return Path(workspace, PurePosixPath(text).relative_to(host))
    return path


def host_workspace(environ: Mapping[str, str]) -> PurePosixPath | None:
    """The workspace as the runner's host sees it, or None where that cannot be told."""
    runner_workspace = environ.get("RUNNER_WORKSPACE", "")
    repository = environ.get("GITHUB_REPOSITORY", "").rpartition("/")[2]
    if not runner_workspace.startswith("/") or not repository:
        return None
    return PurePosixPath(runner_workspace, repository)


def _read_certificates(path: Path, *, check: bool = True) -> list[str]:
    """The certificates in a PEM file (or in the files of a folder, as OpenSSL's hashed
    folders hold them), each as one normalised PEM block; ValueError says what is wrong.

    `check`: have OpenSSL parse them too (a few ms for a few certificates, but 20 ms for a
    system bundle: not done for the bundles the step names, which requests would load as is).
    """
    if path.is_dir():
        found: list[str] = []
        for member in sorted(path.iterdir()):
            if member.is_file():
                try:
                    found += _read_certificates(member, check=check)
                except ValueError:
                    continue  # a README, a CRL: OpenSSL skips them too
        if not found:
            raise ValueError(f"`{path}` is a folder without PEM certificates.")
        return found
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ValueError(f"`{path}` does not exist.") from None
    except OSError as e:
        raise ValueError(f"`{path}` cannot be read ({e.strerror or e}).") from None
    blocks = _blocks(text)
    if not blocks:
        raise ValueError(f"`{path}` holds no PEM certificate. {PEM_HINT}")
    if not check:
        return blocks
    import ssl

    try:
        ssl.create_default_context(cadata="".join(blocks))
    except ssl.SSLError as e:
        raise ValueError(f"`{path}` holds a certificate OpenSSL cannot read ({e}).") from None
    return blocks


def _blocks(text: str) -> list[str]:
    """Every certificate of a PEM text, written the same way whatever the source's line
    breaks: the same certificate from two files is then one string, kept once."""
    blocks = []
    for chunk in text.split(BEGIN)[1:]:
        body, end, _ = chunk.partition(END)
        body = "".join(body.split())
        if end and BASE64.fullmatch(body):
            lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
            blocks.append(f"{BEGIN}\n{lines}\n{END}\n")
    return blocks


# --- setting the network up ---------------------------------------------------------------------


def setup_network(
    ca_certificates: Sequence[Path], environ: MutableMapping[str, str], console: Console
) -> Path | None:
    """Make every later request of this process (and of the worker it forks) honour the proxy
    settings and trust the extra certificates; say what was set up. Returns the bundle made,
    if one was: none when nothing is to be added, so a plain run pays nothing."""
    _show_proxies(environ, console)
    extra: dict[str, None] = {}  # certificate -> None: ordered, without duplicates
    for path in ca_certificates:
        extra |= dict.fromkeys(_read_certificates(path))
    named = len(extra)
    read: set[str] = set()
    for variable in BUNDLE_VARIABLES:
        value = environ.get(variable, "")
        if value and value not in read:  # often all three name the same file
            read.add(value)
            extra |= dict.fromkeys(_bundle_in(variable, value, environ))
    if not extra:
        return None
    import tempfile

    import certifi

    roots = dict.fromkeys(_blocks(certifi.contents()))
    added = [block for block in extra if block not in roots]
    # A folder of our own (mode 0700): no other user of /tmp can put a CA of theirs in it.
    bundle = Path(tempfile.mkdtemp(prefix="publisher-ca-")) / "ca-bundle.pem"
    bundle.write_text("".join(roots) + "".join(added), encoding="ascii")
    environ["REQUESTS_CA_BUNDLE"] = environ["SSL_CERT_FILE"] = str(bundle)
    if ca_certificates:
        console.line(
            f"Trusting {named} more certificate{'s' if named != 1 else ''} besides the default "
            f"roots ({', '.join(f'`{p}`' for p in ca_certificates)}): "
            + "; ".join(_subjects(list(extra)[:named]))
        )
    console.detail(f"CA bundle: {bundle} ({len(roots)} default roots, {len(added)} added)")
    return bundle


def _bundle_in(variable: str, value: str, environ: Mapping[str, str]) -> list[str]:
    path = locate(value, environ)
    try:
        return _read_certificates(path, check=False)
    except ValueError as e:
        raise PublishError(
            f"The step sets `{variable}` to `{value}`, whose certificates are to be added to "
            f"the default roots: {e} {_WHERE} Or name the file in the `{INPUT}` input "
            f"instead, and remove `{variable}`.",
            title=f"Unusable {variable}",
        ) from e


def _subjects(blocks: list[str]) -> list[str]:
    """Who each certificate is, for the log: its subject's common name (or organisation)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata="".join(blocks))
    names = []
    for certificate in context.get_ca_certs():
        fields = dict(pair for rdn in certificate.get("subject", ()) for pair in rdn)  # type: ignore[misc]
        names.append(str(fields.get("commonName") or fields.get("organizationName") or "?"))
    return names or ["(not CA certificates)"]


def _show_proxies(environ: Mapping[str, str], console: Console) -> None:
    """One line that says which proxy is used (the lower-case variable wins, as in urllib),
    its password, if any, masked first."""
    shown = []
    for scheme in ("https", "http", "all"):
        value = environ.get(f"{scheme}_proxy") or environ.get(f"{scheme.upper()}_PROXY")
        if value:
            proxy = _proxy_url(value)
            if proxy.password:
                console.mask(proxy.password)
            shown.append(f"{scheme} through `{_host_port(proxy)}`")
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY")
    if shown:
        bypass = f"; not for `{no_proxy}` (NO_PROXY)" if no_proxy else ""
        console.line("Proxy: " + ", ".join(shown) + bypass)


def _proxy_url(value: str) -> SplitResult:
    """A proxy setting as urllib reads it: a bare `host:port` is an http proxy."""
    return urlsplit(value if "//" in value else "http://" + value)


def _host_port(url: SplitResult) -> str:
    return f"{url.hostname}:{url.port}" if url.port else str(url.hostname)


# --- a certificate that does not verify ---------------------------------------------------------


def raise_if_untrusted(error: BaseException, url: str) -> None:
    """Raise `CertificateNotTrusted` if `error` (a connection error, or what wraps one) is a
    certificate verification failure; `url` is where the request went, when the error does
    not say."""
    import ssl

    failure = next((e for e in _chain(error) if isinstance(e, ssl.SSLCertVerificationError)), None)
    if failure is None:
        return
    host, port = _target(error, url)
    raise untrusted_certificate(host, port, failure) from error


def _chain(error: BaseException, limit: int = 30) -> Iterator[BaseException]:
    """`error` and every error it wraps: causes, contexts, urllib3's `reason`, arguments."""
    queue, seen = [error], set[int]()
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(inner, BaseException):
                queue.append(inner)


def _target(error: BaseException, url: str) -> tuple[str, int]:
    for current in _chain(error):
        request_url = getattr(getattr(current, "request", None), "url", None)
        if isinstance(request_url, str) and request_url:
            url = request_url
            break
        pool = getattr(current, "pool", None)
        if isinstance(getattr(pool, "host", None), str):
            return str(pool.host), int(getattr(pool, "port", None) or 443)  # type: ignore[union-attr]
    parts = urlsplit(url)
    return parts.hostname or url, parts.port or 443


def untrusted_certificate(
    host: str, port: int, failure: ssl.SSLCertVerificationError
) -> CertificateNotTrusted:
    """The error for `host`: what its certificate is and who issued it, and what to do."""
    proxy = _proxy_for(host, port)
    via = f" (reached through the proxy `{_host_port(proxy)}`)" if proxy else ""
    reason = str(getattr(failure, "verify_message", "") or failure)
    try:
        issuer, subject = _presented(host, port, proxy)
        who = f"It was issued by `{issuer}`" + (
            " (it signed itself)" if issuer == subject else f", for `{subject or host}`"
        )
    except (OSError, ValueError) as e:
        who = f"Who issued it could not be told (reading it again failed: {e})"
    code = getattr(failure, "verify_code", 0)
    hint = ""
    if code in (62, 64):  # hostname or IP address mismatch: a CA does not fix that
        hint = (
            f"The certificate is not for `{host}`: check the URL first; if a proxy answers in "
            f"its place, it must trust `{host}` itself. "
        )
    elif code == 10:
        hint = "The certificate has expired: whoever runs that server must renew it. "
    return CertificateNotTrusted(
        f"`{host}:{port}`{via} presented a certificate that does not verify: {reason}. "
        f"{who}.\n\n{hint}If that certificate authority is one your organisation trusts (a "
        "private index's CA, or a proxy that inspects TLS and re-signs every site's "
        "certificate), give the action its certificate: commit the PEM file to the repository "
        f"(or write it into the workspace in an earlier step) and name it in the `{INPUT}` "
        "input. It is added to the default roots:\n\n"
        "```yaml\n      - uses: OWNER/publisher@v1\n        with:\n"
        f"          {INPUT}: certs/corporate-ca.pem\n```\n\n"
        f"Nothing was sent to `{host}`: the connection ended before the request.",
        title=f"TLS certificate of {host} not trusted",
    )


def _proxy_for(host: str, port: int) -> SplitResult | None:
    """The proxy requests uses for https://host:port, NO_PROXY considered."""
    from requests.utils import get_environ_proxies, select_proxy

    url = f"https://{host}:{port}/"
    proxy = select_proxy(url, get_environ_proxies(url))
    return _proxy_url(proxy) if proxy else None


def _presented(
    host: str, port: int, proxy: SplitResult | None, timeout: float = 5.0
) -> tuple[str, str]:
    """(issuer, subject) of the certificate `host` presents, read without verifying it, the
    way the failed request went: through `proxy` (by CONNECT), if any."""
    import socket
    import ssl

    from cryptography import x509

    if proxy is None:
        sock = socket.create_connection((host, port), timeout)
    else:
        sock = socket.create_connection((proxy.hostname or "", proxy.port or 80), timeout)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to read who issued it: nothing is sent
    with sock:
        if proxy is not None:
            _connect(sock, host, port, proxy)
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ValueError("no certificate")
    certificate = x509.load_der_x509_certificate(der)
    return certificate.issuer.rfc4514_string(), certificate.subject.rfc4514_string()


def _connect(sock: socket.socket, host: str, port: int, proxy: SplitResult) -> None:
    """Open a tunnel to host:port through an http proxy (an RFC 9110 CONNECT)."""
    import base64
    from urllib.parse import unquote

    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if proxy.username is not None:
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    status = answer.split(b"\r\n", 1)[0].decode("latin-1")
    if status.split(" ")[1:2] != ["200"]:
        raise OSError(f"the proxy answered `{status or 'nothing'}` to CONNECT")
