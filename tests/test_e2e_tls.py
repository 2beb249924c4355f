"""Corporate networks, end to end: an index with a private CA, and a real proxy in the way.

The Warehouse stand-in serves https with a certificate from a CA made for the test
(`tests.tls`); the OIDC runtime and the stand-in Sigstore stay on plain http. proxy.py, a real
forwarding proxy, either tunnels https (CONNECT) or intercepts it and re-signs every site with
its own CA, as a corporate proxy does; its record says what went through it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run, Runner, assert_no_secrets
from tests.servers import OidcRuntime, Warehouse
from tests.sigstore_standin import Sigstore
from tests.tls import Authority, Proxy, make_authority

# The workspace as the runner's host sees it, for octo-org/example-pkg: RUNNER_WORKSPACE/REPO.
HOST_WORKSPACE = "/home/runner/work/example-pkg/example-pkg"
ON_HOST = {"RUNNER_WORKSPACE": "/home/runner/work/example-pkg"}
# This machine's own bundles would be merged too: each test says what the step sets.
NO_BUNDLES = {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "", "SSL_CERT_FILE": ""}
NO_PROXIES = {name: "" for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")}


@pytest.fixture
def authority() -> Authority:
    return make_authority("Example Corp Issuing CA", "Example Corp")


@pytest.fixture
def warehouse(
    runtime: OidcRuntime, sigstore: Sigstore, authority: Authority
) -> Iterator[Warehouse]:
    """The Warehouse stand-in over https, its certificate signed by `authority`."""
    server = Warehouse(runtime, tls=authority.server_context())
    server.trusted_root = sigstore.trusted_root_json()
    yield server
    server.close()


def assert_published(
    run: Run, runtime: OidcRuntime, warehouse: Warehouse, dists: list[Path]
) -> None:
    assert run.returncode == 0, run.log
    assert sorted(warehouse.files) == sorted(p.name for p in dists)
    assert all(len(warehouse.files[p.name].attestations) == 1 for p in dists)
    assert warehouse.minted
    assert all(m.burned for m in warehouse.minted)
    assert_no_secrets(run, *runtime.issued, *warehouse.minted_tokens)


def assert_untrusted(run: Run, host: str, issuer: str, warehouse: Warehouse) -> None:
    """Exit 1 at the first request, naming the host, the issuer and the input; nothing sent."""
    assert run.returncode == 1, run.log
    assert f"::error title=TLS certificate of {host} not trusted::" in run.stdout
    for text in (f"`{host}:", f"It was issued by `{issuer}`", "`ca-certificates`"):
        assert text in run.summary
    assert "Traceback" not in run.log
    assert "retry" not in run.log  # a certificate that does not verify is not retried
    assert warehouse.requests == []  # not one request: every handshake failed
    assert warehouse.upload_attempts == []
    assert all(m.burned for m in warehouse.minted)


def test_an_untrusted_certificate_stops_before_anything_is_sent(
    runner: Runner,
    warehouse: Warehouse,
    authority: Authority,
    dists: list[Path],
) -> None:
    run = runner({"repository-url": warehouse.upload_url})

    assert_untrusted(run, "127.0.0.1", authority.name, warehouse)
    assert "presented a certificate that does not verify" in run.summary


def test_password_upload_to_an_untrusted_index_fails_the_same_way(
    runner: Runner, warehouse: Warehouse, authority: Authority, dists: list[Path]
) -> None:
    warehouse.passwords["alice"] = "s3cret-password-value"
    run = runner(
        {
            "repository-url": warehouse.upload_url,
            "user": "alice",
            "password": "s3cret-password-value",
        }
    )

    assert_untrusted(run, "127.0.0.1", authority.name, warehouse)
    assert_no_secrets(run, "s3cret-password-value")


def test_ca_certificates_in_the_workspace_make_it_publish(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    authority: Authority,
    dists: list[Path],
) -> None:
    authority.write(runner.workspace / "certs" / "ca.pem")
    run = runner(
        {"repository-url": warehouse.upload_url, "ca-certificates": "certs/ca.pem"},
        extra_env=NO_BUNDLES,
    )

    assert_published(run, runtime, warehouse, dists)
    assert "Trusting 1 more certificate besides the default roots (`certs/ca.pem`): " in run.stdout
    assert "Example Corp Issuing CA" in run.stdout


@pytest.mark.parametrize(
    ("inputs", "env"),
    [
        pytest.param(
            {"ca-certificates": f"{HOST_WORKSPACE}/certs/ca.pem"}, ON_HOST, id="host-path-input"
        ),
        pytest.param(  # the runner rewrites a host path only at the start of a value
            {"ca-certificates": f"certs/other.pem\n{HOST_WORKSPACE}/certs/ca.pem"},
            ON_HOST,
            id="second-line-host-path",
        ),
        pytest.param(
            {},
            ON_HOST | {"REQUESTS_CA_BUNDLE": f"{HOST_WORKSPACE}/certs/ca.pem"},
            id="requests-ca-bundle",
        ),
        pytest.param({}, {"SSL_CERT_FILE": "certs/ca.pem"}, id="ssl-cert-file"),
    ],
)
def test_the_ways_users_name_the_ca(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    authority: Authority,
    dists: list[Path],
    inputs: dict[str, str],
    env: dict[str, str],
) -> None:
    authority.write(runner.workspace / "certs" / "ca.pem")
    make_authority("Another CA").write(runner.workspace / "certs" / "other.pem")
    run = runner({"repository-url": warehouse.upload_url, **inputs}, extra_env=NO_BUNDLES | env)

    assert_published(run, runtime, warehouse, dists)


def test_a_missing_ca_file_is_an_input_error(
    runner: Runner, warehouse: Warehouse, dists: list[Path]
) -> None:
    run = runner(
        {"repository-url": warehouse.upload_url, "ca-certificates": f"{HOST_WORKSPACE}/ca.pem"},
        extra_env=ON_HOST,
    )

    assert run.returncode == 1, run.log
    assert "::error title=Invalid input `ca-certificates`::" in run.stdout
    assert f"`{runner.workspace / 'ca.pem'}` does not exist" in run.summary
    assert warehouse.requests == []


def proxied(proxy: Proxy) -> dict[str, str]:
    return NO_BUNDLES | NO_PROXIES | {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url}


@pytest.fixture
def site_ca(runner: Runner, authority: Authority) -> Path:
    return authority.write(runner.tmp_path / "site-ca.pem")


@pytest.fixture
def intercepting(runner: Runner, site_ca: Path) -> Iterator[tuple[Proxy, Authority]]:
    """A proxy that re-signs every https site with a CA of its own, as corporate ones do."""
    proxy_ca = make_authority("Corp Inspection Proxy CA", "Corp IT")
    proxy = Proxy(runner.tmp_path / "proxy", intercept=proxy_ca, upstream_ca=site_ca)
    yield proxy, proxy_ca
    proxy.close()


def test_everything_goes_through_an_intercepting_proxy(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    sigstore: Sigstore,
    intercepting: tuple[Proxy, Authority],
    dists: list[Path],
) -> None:
    proxy, proxy_ca = intercepting
    proxy_ca.write(runner.workspace / "proxy-ca.pem")
    # The proxy re-signs for a host name (its certificates carry no IP address).
    index = warehouse.upload_url.replace("127.0.0.1", "localhost")
    run = runner(
        {"repository-url": index, "ca-certificates": "proxy-ca.pem", "skip-existing": "true"},
        extra_env=proxied(proxy),
    )

    assert_published(run, runtime, warehouse, dists)
    assert f"Proxy: https through `{proxy.url[7:]}`, http through `{proxy.url[7:]}`" in run.stdout
    seen = proxy.requests()
    index_host = index.split("/")[2]
    runtime_host = runtime.url.split("/")[2]
    through = Counter((m, path) for m, host, path in seen if host == index_host and path)
    # Every request the index received came through the proxy, and nothing else did.
    assert through == Counter(warehouse.requests)
    for method, path in [
        ("GET", "/_/oidc/audience"),
        ("POST", "/_/oidc/mint-token"),
        ("POST", "/legacy/"),
        ("GET", "/simple/example-pkg/"),
        ("POST", "/_/oidc/burn-token"),
    ]:
        assert through[method, path] >= 1, (method, path, seen)
    assert through["POST", "/legacy/"] == len(dists)
    assert ("CONNECT", index_host, "") in seen
    tokens = [p for m, h, p in seen if h == runtime_host and p.startswith("/token?")]
    assert tokens == [
        "/token?api-version=2.0&audience=pypi",
        "/token?api-version=2.0&audience=sigstore",
    ]
    assert runtime.count("GET", "/token") == 2  # no request went around the proxy
    assert any(h == sigstore.fulcio.url.split("/")[2] for _, h, _ in seen)


def test_an_intercepting_proxy_without_its_ca_is_named(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    intercepting: tuple[Proxy, Authority],
    dists: list[Path],
) -> None:
    proxy, proxy_ca = intercepting
    index = warehouse.upload_url.replace("127.0.0.1", "localhost")
    run = runner({"repository-url": index}, extra_env=proxied(proxy))

    assert_untrusted(run, "localhost", proxy_ca.name, warehouse)
    assert f"(reached through the proxy `{proxy.url[7:]}`)" in run.summary


def test_https_through_a_tunnelling_proxy(
    runner: Runner,
    runtime: OidcRuntime,
    warehouse: Warehouse,
    authority: Authority,
    dists: list[Path],
) -> None:
    proxy = Proxy(runner.tmp_path / "proxy")
    try:
        authority.write(runner.workspace / "ca.pem")
        run = runner(
            {"repository-url": warehouse.upload_url, "ca-certificates": "ca.pem"},
            extra_env=proxied(proxy),
        )
    finally:
        proxy.close()

    assert_published(run, runtime, warehouse, dists)
    index_host = warehouse.url.split("/")[2]
    seen = proxy.requests()
    assert ("CONNECT", index_host, "") in seen
    assert all(host != index_host or method == "CONNECT" for method, host, _ in seen)
    assert [p for _, h, p in seen if h == runtime.url.split("/")[2]] == [
        "/token?api-version=2.0&audience=pypi",
        "/token?api-version=2.0&audience=sigstore",
    ]
