"""A real devpi-server on 127.0.0.1, for the tests that check what the action reads of an index.

One server per test module (start-up costs about 1.5 s), a fresh index per test (`alice/dev-<n>`),
no PyPI anywhere: the server is initialised without `root/pypi`, runs with `--offline-mode`, and
every index has empty `bases`. What the index received is read from the server's own log.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import free_port, wait_until_up

USER, PASSWORD = "alice", "devpi-horse-battery-staple"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"

# One log line a request: `... INFO  [req12] POST /alice/dev-1/`.
_REQUEST = re.compile(r"\[req\d+\] ([A-Z]+) (\S+)$")
# One a file stored: `... [Wtx2] added <Rel.ReleaseFile: 'releasefile'> link alice/dev-1/+f/...`.
_STORED = re.compile(r"added <Rel\.ReleaseFile: 'releasefile'> link (\S+)$")


class DevpiServer:
    """devpi-server run as its users run it: `devpi-init`, then `devpi-server`, in a fresh
    server directory; user `alice` made through the HTTP API."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        serverdir = directory / "server"
        scripts = Path(sysconfig.get_path("scripts"))
        init = subprocess.run(
            [scripts / "devpi-init", "--serverdir", serverdir, "--no-root-pypi"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if init.returncode != 0:
            raise RuntimeError(f"devpi-init failed:\n{init.stdout}{init.stderr}")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = directory / "devpi-server.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devpi_server",
                "--serverdir",
                str(serverdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--offline-mode",
                "--threads",
                "8",
                # The server secret is derived with argon2 at start-up: 5 to 10 s with the
                # defaults. These hidden options (which devpi's own tests lower too) make it 0.1 s;
                # user passwords are hashed as usual.
                "--argon2-memory-cost",
                "8",
                "--argon2-parallelism",
                "1",
                "--argon2-time-cost",
                "1",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._indexes = itertools.count(1)
        try:
            wait_until_up(f"{self.url}/+api", self.process, self.log_path, timeout=60)
            response = requests.put(
                f"{self.url}/{USER}",
                json={"password": PASSWORD, "email": f"{USER}@example.com"},
                timeout=10,
            )
            assert response.status_code == 201, response.text
        except BaseException:
            self.close()
            raise

    def new_index(self, *, volatile: bool = False) -> DevpiIndex:
        """A fresh index of alice's, with no base (no PyPI mirror behind it)."""
        index = DevpiIndex(self, f"{USER}/dev-{next(self._indexes)}")
        response = requests.put(
            f"{self.url}/{index.name}",
            json={"type": "stage", "bases": [], "volatile": volatile},
            auth=(USER, PASSWORD),
            timeout=10,
        )
        assert response.status_code == 200, response.text  # 200, not 201, for a new index
        return index

    def log(self) -> str:
        return self.log_path.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # devpi-server exits at once on SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@dataclass(frozen=True)
class DevpiIndex:
    server: DevpiServer
    name: str  # "alice/dev-1"

    user: str = USER
    password: str = PASSWORD

    @property
    def upload_url(self) -> str:
        """What users give as `repository-url`: the index's own URL."""
        return f"{self.server.url}/{self.name}/"

    @property
    def simple_url(self) -> str:
        """The simple root, what pip takes as `--index-url`."""
        return f"{self.server.url}/{self.name}/+simple/"

    def files(self, project: str = "example-pkg") -> dict[str, str]:
        """Filename -> sha256 of every file the index holds of `project`, from its PEP 691 page;
        empty when the project is not there."""
        response = requests.get(
            f"{self.simple_url}{project}/", headers={"Accept": SIMPLE_JSON}, timeout=10
        )
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        return {f["filename"]: f["hashes"]["sha256"] for f in page["files"]}

    def received(self, method: str) -> list[str]:
        """The paths of this index that got a `method` request, in order, from the server log."""
        prefix = f"/{self.name}/"
        return [
            match[2]
            for line in self.server.log().splitlines()
            if (match := _REQUEST.search(line)) and match[1] == method
            if match[2].startswith(prefix)
        ]

    def stored(self) -> list[str]:
        """The file names this index stored, one entry per time a file was written: an upload
        the index took as identical to a file it holds writes nothing."""
        prefix = f"{self.name}/+f/"
        return [
            match[1].rsplit("/", 1)[-1]
            for line in self.server.log().splitlines()
            if (match := _STORED.search(line)) and match[1].startswith(prefix)
        ]


@pytest.fixture(name="devpi_server", scope="module")
def devpi_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevpiServer]:
    """A real devpi-server (started once per module, about 1.5 s); take `devpi` for an index.

    What devpi-server 6.20.3 answers, observed with this fixture:

    - Set-up: `PUT /alice` `{"password", "email"}` -> 201 (anyone may create a user);
      `PUT /alice/dev-1` `{"type": "stage", "bases": [], "volatile": false}` with Basic auth ->
      200 (not 201) with the index's config; without auth 403 "no permission to create index".
    - Upload (`POST /alice/dev-1/`, twine's form, Basic auth with the user's password): 200 OK.
      The same file again: 200 with the reason "Upload of identical file to non volatile index."
      and nothing stored. Other bytes under the same name: 409, reason and HTML body
      "<filename> already exists in non-volatile index". On a volatile index both answer 200 OK
      and other bytes silently replace the file.
    - Every response carries `X-Devpi-Api-Version: 2`, `X-Devpi-Serial`,
      `X-Devpi-Server-Version`, `X-Devpi-Uuid`, `X-Devpi-Master-Uuid`, `X-Devpi-Primary-Uuid`
      (`Server: waitress`), 404s and redirects included.
    - The simple API is `/alice/dev-1/+simple/<project>/`: PEP 503 HTML with relative links
      (`../../+f/feb/68e502e8c7203/<filename>#sha256=...`, `data-requires-python`), or PEP 691
      JSON (api-version 1.0, `hashes.sha256`) when asked with `Accept`; `Vary: Accept,
      User-Agent`. An unknown project: 404 "The project <p> does not exist." A name not
      normalized, or without its trailing slash: 302 to `+simple/<normalized>/` on the same host.
    - `/alice/dev-1/simple/<project>/` (the rule `<upload URL>simple/` used before issue 13):
      404 "The version <project> of project simple does not exist.", i.e. "not published yet";
      `/alice/dev-1/simple/` answers 415.
    - `GET /alice/dev-1/` (the upload URL) answers the index config as JSON, with `projects`;
      `GET /alice/dev-1/<project>` with `Accept: application/json` every release with its files
      (`+links`: absolute `href`, `hashes`, and a `log` of uploads).
    """
    server = DevpiServer(tmp_path_factory.mktemp("devpi"))
    yield server
    server.close()


@pytest.fixture(name="devpi")
def devpi_fixture(devpi_server: DevpiServer) -> DevpiIndex:
    """A fresh, non-volatile index with no base on the module's devpi-server."""
    return devpi_server.new_index()
