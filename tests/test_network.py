"""`publisher.network`: where a CA file is, the bundle made of it, and the error for a
certificate that does not verify, against real TLS servers on 127.0.0.1."""

from __future__ import annotations

import os
import pickle
import ssl
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import certifi
import pytest
import requests
import urllib3

from publisher.console import Console
from publisher.errors import CertificateNotTrusted, InputError, PublishError
from publisher.http import RetryPolicy, make_session, request
from publisher.network import (
    certificate_paths,
    locate,
    raise_if_untrusted,
    setup_network,
)
from tests.servers import StandIn
from tests.test_http import Via
from tests.tls import Authority, Proxy, make_authority

HOST = "/home/runner/work/example-pkg/example-pkg"  # the runner's workspace on its host
BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
BEGIN = "-----BEGIN CERTIFICATE-----"
DEFAULT_ROOTS = certifi.contents().count(BEGIN)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """What the runner gives the container: the workspace inside, RUNNER_WORKSPACE outside."""
    return {
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_REPOSITORY": "octo-org/example-pkg",
        "RUNNER_WORKSPACE": "/home/runner/work/example-pkg",
    }


@pytest.fixture
def authority() -> Authority:
    return make_authority("Unit Test CA", "Example Corp")


class Hello(StandIn):
    def handle(self, method: str, path: str, headers: object, body: bytes):  # type: ignore[no-untyped-def]
        return 200, {"content-type": "text/plain"}, b"hello"


@pytest.fixture
def server(authority: Authority) -> Iterator[Hello]:
    stand_in = Hello(tls=authority.server_context())
    yield stand_in
    stand_in.close()


@pytest.fixture
def console() -> Console:
    return Console(in_actions=True)


# --- where the files are ----------------------------------------------------------------------


def test_a_relative_path_is_kept(environ: dict[str, str]) -> None:
    assert locate("certs/ca.pem", environ) == Path("certs/ca.pem")


def test_a_host_path_into_the_workspace_is_mapped(tmp_path: Path, environ: dict[str, str]) -> None:
    assert locate(f"{HOST}/certs/ca.pem", environ) == tmp_path / "certs" / "ca.pem"


def test_a_path_that_exists_is_kept(tmp_path: Path, environ: dict[str, str]) -> None:
    existing = tmp_path / "ca.pem"
    existing.write_text("")
    assert locate(str(existing), environ) == existing


@pytest.mark.parametrize(
    "outside",
    [
        "/home/runner/work/example-pkg/certs/ca.pem",  # runner.workspace: not mounted
        "/home/runner/work/example-pkg/example-pkg-2/ca.pem",  # not inside, only alike
        "/etc/ssl/certs/corporate.pem",  # the host's own store: not mounted either
    ],
)
def test_paths_outside_the_workspace_are_not_guessed(environ: dict[str, str], outside: str) -> None:
    assert locate(outside, environ) == Path(outside)


def test_without_runner_workspace_nothing_is_mapped(environ: dict[str, str]) -> None:
    del environ["RUNNER_WORKSPACE"]
    assert locate(f"{HOST}/ca.pem", environ) == Path(f"{HOST}/ca.pem")


def test_several_files_one_a_line_or_space_separated(
    tmp_path: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the workspace is the working directory
    for name in ("a", "b", "c"):
        make_authority(name).write(tmp_path / f"{name}.pem")
    value = f"{tmp_path}/a.pem\n  {HOST}/b.pem c.pem"
    paths = certificate_paths(value, environ)
    assert paths == (tmp_path / "a.pem", tmp_path / "b.pem", Path("c.pem"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        (b"not a certificate\n", "holds no PEM certificate"),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIBaGVsbG8=\n-----END CERTIFICATE-----\n",
            "holds a certificate OpenSSL cannot read",
        ),
    ],
)
def test_an_unusable_file_is_an_input_error(
    tmp_path: Path, environ: dict[str, str], content: bytes | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / "ca.pem").write_bytes(content)
    with pytest.raises(InputError) as raised:
        certificate_paths(f"{HOST}/ca.pem", environ)
    assert raised.value.name == "ca-certificates"
    assert problem in raised.value.markdown
    assert "relative to the workspace" in raised.value.markdown


def test_a_folder_is_read_as_openssl_reads_one(tmp_path: Path, authority: Authority) -> None:
    folder = tmp_path / "certs"
    authority.write(folder / "a.pem")
    (folder / "README").write_text("not a certificate")
    assert certificate_paths(str(folder), {}) == (folder,)


# --- the bundle -------------------------------------------------------------------------------


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> MutableMapping[str, str]:
    """This process's environment without bundles or proxies; restored after the test (the
    libraries read `os.environ` itself, so the bundle is tested there)."""
    for name in (*BUNDLES, *PROXIES):
        monkeypatch.setenv(name, "")  # registered for restoring, then removed
        monkeypatch.delenv(name)
    return os.environ


def test_nothing_to_add_changes_nothing(
    clean_environ: MutableMapping[str, str], console: Console
) -> None:
    assert setup_network((), clean_environ, console) is None
    assert not any(name in clean_environ for name in BUNDLES)


def test_the_ca_is_added_to_the_default_roots(
    tmp_path: Path,
    clean_environ: MutableMapping[str, str],
    authority: Authority,
    server: Hello,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = authority.write(tmp_path / "ca.pem")
    bundle = setup_network((path,), clean_environ, Console(in_actions=True))

    assert bundle is not None
    assert clean_environ["REQUESTS_CA_BUNDLE"] == clean_environ["SSL_CERT_FILE"] == str(bundle)
    assert bundle.read_text().count(BEGIN) == DEFAULT_ROOTS + 1
    assert bundle.parent.stat().st_mode & 0o777 == 0o700  # no one else can add to it
    out = capsys.readouterr().out
    assert f"Trusting 1 more certificate besides the default roots (`{path}`): Unit Test CA" in out
    # requests (ours, twine's, sigstore's) and bare urllib3 (tuf, id) now trust the server...
    with make_session() as session:
        assert session.get(server.url).text == "hello"
    assert urllib3.request("GET", server.url).data == b"hello"
    # ...and still every public root
    assert len(ssl.create_default_context().get_ca_certs()) >= DEFAULT_ROOTS


def test_a_bundle_the_step_names_is_added_not_swapped_in(
    tmp_path: Path, clean_environ: MutableMapping[str, str], authority: Authority, console: Console
) -> None:
    mine = authority.write(tmp_path / "mine.pem")
    clean_environ["REQUESTS_CA_BUNDLE"] = str(mine)
    clean_environ["SSL_CERT_FILE"] = str(mine)
    bundle = setup_network((mine,), clean_environ, console)  # named twice: kept once

    assert bundle is not None
    assert clean_environ["REQUESTS_CA_BUNDLE"] == str(bundle)
    assert bundle.read_text().count(BEGIN) == DEFAULT_ROOTS + 1


def test_a_bundle_variable_naming_nothing_is_explained(
    clean_environ: MutableMapping[str, str], console: Console
) -> None:
    clean_environ["SSL_CERT_FILE"] = "/etc/ssl/certs/corporate.pem-not-here"
    with pytest.raises(PublishError) as raised:
        setup_network((), clean_environ, console)
    assert raised.value.title == "Unusable SSL_CERT_FILE"
    assert "`ca-certificates`" in raised.value.markdown


def test_the_proxy_is_shown_with_its_password_masked(
    clean_environ: MutableMapping[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environ["HTTPS_PROXY"] = "http://build:pr0xy-s3cret@proxy.corp.example:3128"
    clean_environ["NO_PROXY"] = ".corp.example"
    setup_network((), clean_environ, Console(in_actions=True))

    out = capsys.readouterr().out
    assert out.splitlines()[0] == "::add-mask::pr0xy-s3cret"
    assert (
        "Proxy: https through `proxy.corp.example:3128`; not for `.corp.example` (NO_PROXY)" in out
    )
    assert out.count("pr0xy-s3cret") == 1


# --- a certificate that does not verify -------------------------------------------------------


def test_an_untrusted_server_names_its_issuer_and_the_input(
    clean_environ: MutableMapping[str, str], server: Hello, authority: Authority
) -> None:
    with pytest.raises(requests.exceptions.SSLError) as failed:
        requests.get(server.url, timeout=5)
    with pytest.raises(CertificateNotTrusted) as raised:
        raise_if_untrusted(failed.value, "https://unused.example/")

    error = raised.value
    assert error.title == "TLS certificate of 127.0.0.1 not trusted"
    assert f"`{server.url[8:]}` presented a certificate that does not verify" in error.markdown
    assert f"It was issued by `{authority.name}`, for `CN=127.0.0.1`" in error.markdown
    assert "`ca-certificates`" in error.markdown
    # the signing worker sends its errors back pickled: the title must survive
    assert pickle.loads(pickle.dumps(error)).title == error.title  # noqa: S301


def test_it_is_not_retried(clean_environ: MutableMapping[str, str], server: Hello) -> None:
    logged: list[str] = []
    with make_session() as session, pytest.raises(CertificateNotTrusted):
        request(
            Via(session, RetryPolicy(attempts=3, delay=0.01), logged.append),
            "GET",
            server.url,
            what="Reading",
        )
    assert logged == []
    assert server.requests == []


def test_a_wrong_host_name_says_so(
    tmp_path: Path, clean_environ: MutableMapping[str, str], authority: Authority
) -> None:
    other = Hello(tls=authority.server_context(hosts=("index.example",)))
    trusted = str(authority.write(tmp_path / "ca.pem"))
    try:
        with pytest.raises(requests.exceptions.SSLError) as failed:
            requests.get(other.url, timeout=5, verify=trusted)
        with pytest.raises(CertificateNotTrusted) as raised:
            raise_if_untrusted(failed.value, other.url)
    finally:
        other.close()
    assert "The certificate is not for `127.0.0.1`: check the URL first" in raised.value.markdown


def test_other_connection_errors_are_left_alone(clean_environ: MutableMapping[str, str]) -> None:
    with pytest.raises(requests.ConnectionError) as failed:
        requests.get("https://127.0.0.1:9/", timeout=5)
    raise_if_untrusted(failed.value, "https://127.0.0.1:9/")  # does not raise


def test_through_a_proxy_the_proxy_certificate_is_the_one_read(
    tmp_path: Path, clean_environ: MutableMapping[str, str], authority: Authority
) -> None:
    """A proxy that re-signs: the issuer named is the proxy's CA, read through the proxy."""
    site = Hello(tls=authority.server_context())
    proxy_ca = make_authority("Inspection CA", "Corp IT")
    site_ca = authority.write(tmp_path / "site.pem")
    proxy = Proxy(tmp_path / "proxy", intercept=proxy_ca, upstream_ca=site_ca)
    try:
        clean_environ["HTTPS_PROXY"] = proxy.url
        url = site.url.replace("127.0.0.1", "localhost")
        with pytest.raises(requests.exceptions.SSLError) as failed:
            requests.get(url, timeout=5)
        with pytest.raises(CertificateNotTrusted) as raised:
            raise_if_untrusted(failed.value, url)
    finally:
        proxy.close()
        site.close()
    assert f"(reached through the proxy `{proxy.url[7:]}`)" in raised.value.markdown
    assert f"It was issued by `{proxy_ca.name}`" in raised.value.markdown
