"""Real HTTP servers on 127.0.0.1 standing in for GitHub's OIDC runtime and for Warehouse.

The runtime signs RS256 JWTs with GitHub's claims and publishes its JWKS. The Warehouse stand-in
fetches that JWKS and verifies each token as PyPI does (signature, issuer, audience, expiry,
single use of `jti`, then the trusted publisher by repository, owner, owner id, workflow file
and environment), mints upload tokens, and serves the legacy upload API (verifying every PEP 740
attestation it receives as Warehouse does, against the stand-in Sigstore's trust root) and a
simple index that pip can install from. Both record what they received, for the tests to check.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW_FILENAME_RE = re.compile(r"[^/]+\.(yml|yaml)(?=@)")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a server started in another process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[Any], log: Path, *, timeout: float) -> None:
    """Until `url` answers 200. A server that exits first, or takes longer than `timeout`
    seconds, is an error that shows its `log`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} did not start:\n{log.read_text()}")
        time.sleep(0.05)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not hold up a test's teardown

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets an idle keep-alive connection (uv does, at exit) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            super().handle_error(request, client_address)


class StandIn:
    """A server on 127.0.0.1 in a thread; `handle` answers one request.

    `tls`: serve https with this server-side context (`tests.tls` makes one), handshaking in
    the request's thread, so a client that gives up mid-handshake holds up no other.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers: no 40 ms wait for delayed ACKs

            def do_GET(self) -> None:
                stand_in._dispatch(self)

            def do_POST(self) -> None:
                stand_in._dispatch(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(
                self.server.socket, server_side=True, do_handshake_on_connect=False
            )
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.requests: list[tuple[str, str]] = []  # (method, path)
        # path prefix -> a hostile answer: `answer(handler, body)` writes whatever bytes it likes
        # to `handler.wfile` (a bare CR in the status line, a page sent a byte a second...)
        self.takeover: dict[str, Callable[[BaseHTTPRequestHandler, bytes], None]] = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((handler.command, handler.path))
        route = urlsplit(handler.path).path
        for prefix, answer in list(self.takeover.items()):
            if route.startswith(prefix):
                handler.close_connection = True
                with contextlib.suppress(OSError):  # the client gave up: as a hostile answer wants
                    answer(handler, body)
                return
        try:
            status, headers, payload = self.handle(
                handler.command, handler.path, handler.headers, body
            )
        except Exception as e:  # a bug in the stand-in: show it, as a 500
            status, headers, payload = 500, {"content-type": "text/plain"}, repr(e).encode()
        if status == 0:  # drop the connection without an answer
            handler.close_connection = True
            handler.connection.close()
            return
        headers = dict(headers)
        handler.send_response(status, headers.pop(":reason", None))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def handle(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def count(self, method: str, prefix: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))


def _refused(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    """An upload error as Warehouse answers it: the message in the status line, and again in an
    HTML page under the generic explanation of the status."""
    explanation = {
        400: "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect.",
        403: "Access was denied to this resource.",
    }[status]
    page = (
        f"<html>\n <head>\n  <title>{status} {html.escape(message)}</title>\n </head>\n"
        f" <body>\n  <h1>{status} {html.escape(message)}</h1>\n  {explanation}<br/><br/>\n"
        f"{html.escape(message)}\n\n\n </body>\n</html>"
    )
    return status, {"content-type": "text/html; charset=UTF-8", ":reason": message}, page.encode()


def _json(status: int, value: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(value).encode()


@dataclass
class Claims:
    """What GitHub puts in a job's OIDC token; the defaults are a tag push in owner/project.

    Every claim a real token carries is there, Fulcio's too (`workflow_sha`, `job_workflow_sha`,
    `repository_visibility`, ...); `omit` leaves some out, as older GitHub Enterprise Server
    tokens do.
    """

    repository: str = "octo-org/example-pkg"
    repository_owner_id: str = "4242"
    workflow: str = "release.yml"  # the workflow file, in `workflow_ref`
    ref: str = "refs/tags/v1.0.0"
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    environment: str = "pypi"
    event_name: str = "push"
    job_workflow_ref: str = ""  # default: the workflow itself (no reusable workflow)
    workflow_name: str = "Release"  # the `workflow` claim: the workflow's `name:`
    workflow_sha: str = ""  # default: sha
    job_workflow_sha: str = ""  # default: workflow_sha
    repository_id: str = "99"
    repository_visibility: str = "public"
    actor: str = "octocat"
    actor_id: str = "583231"
    run_id: str = "1234"
    run_number: str = "7"
    run_attempt: str = "1"
    head_ref: str = ""  # set for pull_request events only, as base_ref
    base_ref: str = ""
    runner_environment: str = "github-hosted"
    omit: tuple[str, ...] = ()  # claims to leave out

    def as_dict(self, audience: str) -> dict[str, Any]:
        owner = self.repository.split("/")[0]
        workflow_ref = f"{self.repository}/.github/workflows/{self.workflow}@{self.ref}"
        workflow_sha = self.workflow_sha or self.sha
        now = int(time.time())
        claims = {
            "iss": GITHUB_ISSUER,
            "aud": audience,
            "sub": f"repo:{self.repository}:"
            + (f"environment:{self.environment}" if self.environment else f"ref:{self.ref}"),
            "repository": self.repository,
            "repository_owner": owner,
            "repository_owner_id": self.repository_owner_id,
            "repository_id": self.repository_id,
            "repository_visibility": self.repository_visibility,
            "actor": self.actor,
            "actor_id": self.actor_id,
            "workflow": self.workflow_name,
            "workflow_ref": workflow_ref,
            "workflow_sha": workflow_sha,
            "job_workflow_ref": self.job_workflow_ref or workflow_ref,
            "job_workflow_sha": self.job_workflow_sha or workflow_sha,
            "ref": self.ref,
            "ref_type": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "ref_protected": "false",
            "head_ref": self.head_ref,
            "base_ref": self.base_ref,
            "sha": self.sha,
            "event_name": self.event_name,
            "jti": str(uuid.uuid4()),
            "run_id": self.run_id,
            "run_number": self.run_number,
            "run_attempt": self.run_attempt,
            "runner_environment": self.runner_environment,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        }
        if self.environment:
            claims["environment"] = self.environment
        for name in self.omit:
            claims.pop(name, None)
        return claims


class OidcRuntime(StandIn):
    """GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL`: `GET /token?api-version=2.0&audience=X`."""

    def __init__(self) -> None:
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key"
        self.request_token = secrets.token_urlsafe(24)
        self.claims = Claims()
        self.issued: list[str] = []  # every JWT handed out: tests check none is ever printed
        self.fail_next: list[int] = []  # statuses to answer with before serving tokens

    @property
    def request_url(self) -> str:
        return f"{self.url}/token?api-version=2.0"

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def handle(self, method: str, path: str, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        parts = urlsplit(path)
        if parts.path == "/.well-known/jwks":
            return _json(200, self.jwks())
        if parts.path != "/token":
            return _json(404, {"message": "not found"})
        with self.lock:
            if self.fail_next:
                return self.fail_next.pop(0), {"content-type": "text/html"}, b"<h1>Unicorn!</h1>"
        if headers.get("authorization") != f"bearer {self.request_token}":
            return _json(401, {"message": "bad request token"})
        query = parse_qs(parts.query)
        if query.get("api-version") != ["2.0"] or "audience" not in query:
            return _json(400, {"message": f"bad query {parts.query}"})
        token = jwt.encode(
            self.claims.as_dict(query["audience"][0]),
            self.key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )
        with self.lock:
            self.issued.append(token)
        return _json(200, {"count": 1, "value": token})


@dataclass
class Publisher:
    repository: str = "octo-org/example-pkg"
    repository_owner_id: str = "4242"
    workflow: str = "release.yml"
    environment: str = "pypi"  # empty: any environment
    projects: tuple[str, ...] = ("example-pkg",)


@dataclass
class StoredFile:
    filename: str
    project: str
    version: str
    content: bytes
    sha256: str
    form: dict[str, list[str]] = field(repr=False, default_factory=dict)
    attestations: list[dict[str, Any]] = field(repr=False, default_factory=list)  # verified
    stored_at: float = field(default_factory=time.time)


@dataclass
class Minted:
    token: str
    expires: float
    projects: tuple[str, ...]
    publisher: Publisher
    burned: bool = False


class Warehouse(StandIn):
    """Warehouse's trusted-publishing endpoints, legacy upload API and simple index."""

    def __init__(
        self, runtime: OidcRuntime, audience: str = "pypi", tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(tls)
        self.runtime = runtime
        self.audience = audience
        self.audience_status = 200  # 403: disabled, 404: no trusted publishing
        self.publishers = [Publisher()]
        self.token_lifetime = 900.0
        self.whole_second_expiry = True  # as Warehouse says it; False for tests that need better
        self.burn_status = 202
        self.passwords: dict[str, str] = {}  # user -> password, for the password path
        self.used_jti: set[str] = set()
        self.minted: list[Minted] = []
        self.files: dict[str, StoredFile] = {}
        self.upload_attempts: list[str] = []  # filename of every upload request
        # path prefix -> answers to give first: a status, "maintenance" (an HTML 503), "drop" (no
        # answer at all), "pass" (serve it), or ("store-then", status) (store the file, then fail)
        self.fail_next: dict[str, list[Any]] = {}
        self.redirect: dict[str, str] = {}  # path prefix -> Location
        self.identical_reupload_status = 200  # what Warehouse answers to the same file again
        self.too_large: set[str] = set()  # projects whose uploads exceed their size limit
        self.trusted_root: str | None = None  # the Sigstore trust root attestations verify with
        self.upload_delay = 0.0  # seconds of work per upload, as a real index spends
        self.upload_delays: list[float] = []  # for the next uploads, before `upload_delay`
        self.simple_prefix = "/simple/"  # where the simple API is (elsewhere: index-url only)
        self.simple_status = 200  # 401 or 403: the simple API refuses to be read
        self.serve_delay = 0.0  # seconds after its upload before a file is listed
        self.served_sha256: dict[str, str] = {}  # filename -> the sha256 the simple API lies with
        self.simple_hashes = True  # False: list files without their sha256, as some indexes do
        self.old_versions: set[str] = set()  # releases older than 14 days
        self.upload_times: list[tuple[str, float, float]] = []  # (filename, arrived, answered)
        self.in_flight = 0
        self._jwks = jwt.PyJWKClient(f"{runtime.url}/.well-known/jwks")

    @property
    def upload_url(self) -> str:
        return f"{self.url}/legacy/"

    @property
    def minted_tokens(self) -> list[str]:
        return [m.token for m in self.minted]

    def handle(self, method: str, path: str, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        route = urlsplit(path).path
        injected = self._injected(route)
        if injected is not None:
            return injected
        if route == "/_/oidc/audience" and method == "GET":
            if self.audience_status != 200:
                return _json(self.audience_status, {"message": "Trusted publishing is not enabled"})
            return _json(200, {"audience": self.audience})
        if route == "/_/oidc/mint-token" and method == "POST":
            return self._mint(body)
        if route == "/_/oidc/burn-token" and method == "POST":
            return self._burn(body)
        if route == "/legacy/" and method == "POST":
            return self._timed_upload(headers, body)
        if route.startswith(self.simple_prefix) and method == "GET":
            return self._simple(route, headers)
        if route.startswith("/files/") and method == "GET":
            stored = self.files.get(route.rsplit("/", 1)[-1])
            if stored is None:
                return _json(404, {"message": "no such file"})
            return 200, {"content-type": "application/octet-stream"}, stored.content
        return _json(404, {"message": f"not found: {method} {route}"})

    def _injected(self, route: str):  # type: ignore[no-untyped-def]
        for prefix, location in self.redirect.items():
            if route.startswith(prefix):
                return 302, {"location": location}, b""
        for prefix, answers in self.fail_next.items():
            # ("store-then", status) is left for the upload: it stores the file, then fails.
            if route.startswith(prefix) and answers and not isinstance(answers[0], tuple):
                with self.lock:
                    answer = answers.pop(0)
                if answer == "pass":
                    return None
                if answer == "drop":
                    return 0, {}, b""
                if answer == "maintenance":
                    return (
                        503,
                        {"content-type": "text/html"},
                        b"<html><h1>Down for maintenance</h1></html>",
                    )
                return answer, {"content-type": "text/plain"}, b"Backend fell over"
        return None

    def _refuse(self, code: str, description: str):  # type: ignore[no-untyped-def]
        return _json(
            422,
            {
                "message": "Token request failed",
                "errors": [{"code": code, "description": description}],
            },
        )

    def _mint(self, body: bytes):  # type: ignore[no-untyped-def]
        try:
            token = json.loads(body)["token"]
        except (ValueError, KeyError, TypeError):
            return self._refuse("invalid-payload", "malformed payload")
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=GITHUB_ISSUER,
                options={"require": ["iss", "aud", "exp", "iat", "nbf", "jti", "sub"]},
            )
        except jwt.PyJWTError as e:
            return self._refuse("invalid-token", f"could not verify the token: {e}")
        with self.lock:
            if claims["jti"] in self.used_jti:
                return self._refuse("invalid-reuse-token", "Token has already been used")
            self.used_jti.add(claims["jti"])
        if claims.get("event_name") == "pull_request_target":
            return self._refuse(
                "invalid-publisher",
                "valid token, but no corresponding publisher (Publishing from pull_request_target "
                "events is not allowed)",
            )
        publisher = self._match(claims)
        if publisher is None:
            return self._refuse(
                "invalid-publisher",
                "valid token, but no corresponding publisher (Publisher with matching claims "
                "was not found)",
            )
        minted = Minted(
            "pypi-" + secrets.token_urlsafe(40),
            time.time() + self.token_lifetime,
            publisher.projects,
            publisher,
        )
        with self.lock:
            self.minted.append(minted)
        expires = int(minted.expires) if self.whole_second_expiry else minted.expires
        return _json(200, {"success": True, "token": minted.token, "expires": expires})

    def _match(self, claims: dict[str, Any]) -> Publisher | None:
        owner, _, name = claims["repository"].partition("/")
        filename = WORKFLOW_FILENAME_RE.search(claims.get("job_workflow_ref", ""))
        environment = (claims.get("environment") or "").lower()
        for p in self.publishers:
            p_owner, _, p_name = p.repository.partition("/")
            if (
                (p_owner, p_name, p.repository_owner_id)
                == (owner, name, claims["repository_owner_id"])
                and filename is not None
                and filename.group(0) == p.workflow
                and (not p.environment or p.environment.lower() == environment)
                and claims["sub"].lower().startswith(f"repo:{p.repository}".lower())
                and claims["job_workflow_ref"]
                in {
                    f"{p.repository}/.github/workflows/{p.workflow}@{r}"
                    for r in (claims.get("ref"), claims.get("sha"))
                    if r
                }
            ):
                return p
        return None

    def _burn(self, body: bytes):  # type: ignore[no-untyped-def]
        token = json.loads(body or b"{}").get("token")
        with self.lock:
            for minted in self.minted:
                if minted.token == token:
                    minted.burned = True
        if self.burn_status == 404:
            return _json(404, {"message": "not found"})
        return _json(self.burn_status, {"success": True})

    def _authorized(self, headers: Any, project: str) -> bool:
        user, password = self._credentials(headers)
        if user == "__token__":
            now = time.time()
            return any(
                m.token == password and not m.burned and m.expires > now and project in m.projects
                for m in self.minted
            )
        return bool(user) and self.passwords.get(user) == password

    def _credentials(self, headers: Any) -> tuple[str, str]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return "", ""
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user, password

    def _attestations_refused(self, headers: Any, value: str, filename: str, sha256: str) -> str:
        """Warehouse's check of the `attestations` field: only from trusted publishing, and each
        verified against the trust root and the publisher's repository and workflow."""
        from tests.sigstore_standin import AttestationRejected, verify_upload_attestations

        _, token = self._credentials(headers)
        minted = next((m for m in self.minted if m.token == token), None)
        if minted is None:
            return "Attestations are only supported when using Trusted Publishing"
        if self.trusted_root is None:
            return "Unknown error while trying to verify included attestations: no trust root"
        try:
            verify_upload_attestations(
                self.trusted_root,
                value,
                filename,
                sha256,
                repository=minted.publisher.repository,
                workflow=minted.publisher.workflow,
            )
        except AttestationRejected as e:
            return e.message
        return ""

    def _timed_upload(self, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        """An upload that takes `upload_delay` seconds, with its arrival and answer recorded
        (the body has been read by then: the clock starts when the whole request is in)."""
        arrived = time.monotonic()
        with self.lock:
            self.in_flight += 1
            delay = self.upload_delays.pop(0) if self.upload_delays else self.upload_delay
        try:
            time.sleep(delay)
            return self._upload(headers, body)
        finally:
            with self.lock:
                self.in_flight -= 1
                filename = re.search(rb'filename="([^"]*)"', body)
                name = filename.group(1).decode() if filename else "?"
                self.upload_times.append((name, arrived, time.monotonic()))

    def max_in_flight(self) -> int:
        """The most uploads the index was working on at one moment."""
        events = sorted(
            [(arrived, 1) for _, arrived, _ in self.upload_times]
            + [(answered, -1) for _, _, answered in self.upload_times]
        )
        most = current = 0
        for _, step in events:
            current += step
            most = max(most, current)
        return most

    def _upload(self, headers: Any, body: bytes):  # type: ignore[no-untyped-def]
        form, files = parse_multipart(headers.get("content-type", ""), body)
        if form.get(":action") != ["file_upload"] or "content" not in files:
            return 400, {}, b""
        filename, content = files["content"]
        with self.lock:
            self.upload_attempts.append(filename)
        project = normalize(form["name"][0])
        if not self._authorized(headers, project):
            return _refused(403, "Invalid or non-existent authentication information.")
        if project in self.too_large:
            return _refused(400, f"File too large. Limit for project '{project}' is 100 MB.")
        sha256 = hashlib.sha256(content).hexdigest()
        if form.get("sha256_digest") != [sha256]:
            return _refused(
                400,
                "The digest supplied does not match a digest calculated from the uploaded file.",
            )
        blake2 = hashlib.blake2b(content, digest_size=32).hexdigest()
        if form.get("blake2_256_digest", [blake2]) != [blake2]:
            return _refused(
                400,
                "The digest supplied does not match a digest calculated from the uploaded file.",
            )
        existing = self.files.get(filename)
        if existing is not None:  # as Warehouse: before the attestations are even read
            if existing.sha256 == sha256 and self.identical_reupload_status == 200:
                return 200, {"content-type": "text/plain"}, b"OK"
            return _refused(
                400, f"File already exists ({filename!r}, with blake2_256 hash {blake2!r})."
            )
        version = form["version"][0]
        if version in self.old_versions:
            return _refused(
                400, "Uploading new files to releases older than 14 days is not allowed."
            )
        if form.get("filetype") == ["sdist"] and any(
            f.project == project and f.version == version and f.form.get("filetype") == ["sdist"]
            for f in self.files.values()
        ):
            return _refused(400, "Only one sdist may be uploaded per release.")
        attestations = form.get("attestations", [])
        if attestations:
            refusal = self._attestations_refused(headers, attestations[0], filename, sha256)
            if refusal:
                return _refused(400, f"Invalid attestations supplied during upload: {refusal}")
        with self.lock:
            self.files[filename] = StoredFile(
                filename,
                project,
                form["version"][0],
                content,
                sha256,
                form,
                json.loads(attestations[0]) if attestations else [],
            )
            store_then = self.fail_next.get("/legacy/") or []
            if store_then and isinstance(store_then[0], tuple) and store_then[0][0] == "store-then":
                status = store_then.pop(0)[1]
                return status, {"content-type": "text/plain"}, b"Gateway Timeout"
        return 200, {"content-type": "text/plain"}, b"OK"

    def _simple(self, route: str, headers: Any):  # type: ignore[no-untyped-def]
        """The simple API as Warehouse serves it (PEP 691 JSON, PEP 503 HTML), with PyPI's
        provenance URL for attested files; a file appears `serve_delay` s after its upload."""
        if self.simple_status != 200:
            return _json(self.simple_status, {"message": "authentication required"})
        project = normalize(route[len(self.simple_prefix) :].strip("/"))
        now = time.time()
        files = [
            f
            for f in self.files.values()
            if f.project == project and f.stored_at + self.serve_delay <= now
        ]
        if not files:
            return 404, {"content-type": "text/html"}, b"Not Found"
        if "application/vnd.pypi.simple.v1+json" in headers.get("accept", ""):
            return (
                200,
                {"content-type": "application/vnd.pypi.simple.v1+json"},
                json.dumps(
                    {
                        "meta": {"api-version": "1.1"},
                        "name": project,
                        "files": [
                            {
                                "filename": f.filename,
                                "url": f"/files/{f.filename}",
                                "hashes": (
                                    {"sha256": self.served_sha256.get(f.filename, f.sha256)}
                                    if self.simple_hashes
                                    else {}
                                ),
                                "provenance": self._provenance(f),
                            }
                            for f in files
                        ],
                    }
                ).encode(),
            )
        links = "".join(
            f'<a href="/files/{html.escape(f.filename)}{self._fragment(f)}">'
            f"{html.escape(f.filename)}</a><br>"
            for f in files
        )
        return 200, {"content-type": "text/html"}, f"<html><body>{links}</body></html>".encode()

    def _fragment(self, stored: StoredFile) -> str:
        if not self.simple_hashes:
            return ""
        return f"#sha256={self.served_sha256.get(stored.filename, stored.sha256)}"

    def _provenance(self, stored: StoredFile) -> str | None:
        if not stored.attestations:
            return None
        return (
            f"{self.url}/integrity/{stored.project}/{stored.version}/{stored.filename}/provenance"
        )


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    """multipart/form-data -> (fields, files); just what the upload form needs.

    Parts are located with `find` and sliced through a memoryview: a 200 MB upload is not copied
    over and over, which would make the benchmark measure this stand-in instead of the clients.
    """
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return {}, {}
    delimiter = b"\r\n--" + boundary.group(1).encode()
    view = memoryview(body)
    form: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    position = body.find(delimiter[2:])
    while position != -1:
        start = position + len(delimiter) - 2
        if body[start : start + 2] == b"--":
            break
        head_end = body.find(b"\r\n\r\n", start)
        end = body.find(delimiter, head_end)
        if head_end == -1 or end == -1:
            break
        disposition = body[start:head_end].decode("utf-8", "replace")
        value = view[head_end + 4 : end]
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name is not None:
            if filename is not None:
                files[name.group(1)] = (filename.group(1), value)  # type: ignore[assignment]
            else:
                form.setdefault(name.group(1), []).append(bytes(value).decode("utf-8"))
        position = end + 2
    return form, files
