"""Where the publisher runs, decided on the runner: the action's only step starts here.

In the container built from the action's Dockerfile where a Docker engine answers (Linux), as
pypa/gh-action-pypi-publish runs; natively everywhere else (ubuntu-slim, macOS, Windows, runners
without Docker): a virtual environment holding exactly the locked packages, installed by uv
(fetched and checked against its hash as the image build does) with every file's hash checked,
outside the workspace and kept for the job's next publish step. The `run-in` input forces either
way. One line of the log says which way was taken and why.

Natively this process then becomes the publisher (`python -m publisher`), so a cancelled job
signals the publisher itself; in the container way it stays the parent and passes each signal
on (`docker kill --signal`). On Windows, which cannot replace a process, the publisher runs as a
child that gets the console's Ctrl-C and Ctrl-Break as this process does.

Runs on the runner's own Python (3.9 or newer) and imports nothing of the publisher.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NoReturn

ACTION = Path(__file__).resolve().parent.parent
LOCK = ACTION / "docker" / "requirements.txt"
UV_LOCK = ACTION / "docker" / "build-requirements.txt"
WAYS = ("auto", "container", "native")
DOCKER_TIMEOUT = 2.0  # seconds for the engine to answer: ubuntu-slim has the client, no daemon
NATIVE_PYTHON = "3.13"  # what uv installs where the runner's Python is older than 3.11
# What goes into the image: its tag is their hash, so a second step finds it built.
IMAGE_INPUTS = (
    ".dockerignore",
    "Dockerfile",
    "docker/requirements.txt",
    "docker/build-requirements.txt",
    "docker/fetch_uv.py",
    "docker/precompile.py",
)
JOB_CONTAINER_WORKSPACE = "/__w/"  # where the runner mounts its work folder in a job container
PASSED_TO_CONTAINER = ("GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "PUBLISHER_")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


class SetupError(Exception):
    """The set-up failed: nothing was published. `title` heads the annotation."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


def main() -> NoReturn:
    _stop_quietly_on_signals()
    environ = dict(os.environ)
    try:
        way = environ.get("INPUT_RUN-IN", "").strip().lower() or "auto"
        if way not in WAYS:
            raise SetupError(
                "Invalid input `run-in`",
                f"Input `run-in` got `{way}`: expected `auto` (the container where a Docker "
                "engine answers, else natively), `container` or `native`.",
            )
        docker, why = decide(way, environ)
        if docker:
            _say(f"Running in the container built from the action's Dockerfile: {why}")
            image = build_image(docker)
            if image:
                run_in_container(docker, image, environ)
            if way == "container":
                raise SetupError("Image not built", IMAGE_NOT_BUILT)
            why = "the image could not be built here (the log above says why)."
            _warn("Image not built: running natively", IMAGE_NOT_BUILT.split(" Nothing")[0])
        python = native_python()
        shown = f"Python {platform.python_version()}" if python else f"Python {NATIVE_PYTHON}"
        _say(f"Running natively ({shown}, {platform.system()} {platform.machine()}): {why}")
        run_natively(python, environ)
    except SetupError as error:
        _fail(error.title, error.message, environ)
    except KeyboardInterrupt:
        _say("Cancelled while setting up: nothing was published.")
        sys.exit(130)


# --- which way -----------------------------------------------------------------------------------


def decide(way: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The docker command to run the container with (None: natively), and why, for the log."""
    if way == "native":
        return None, "`run-in` is `native`."
    system = platform.system()
    if system != "Linux":
        if way == "container":
            raise SetupError(
                "No container on this runner",
                f"`run-in` is `container`, but this is a {system} runner: Docker container "
                "actions run only on Linux. Remove `run-in` (or set it to `native`).",
            )
        return None, f"{system} runners run no Docker containers for actions."
    docker = shutil.which("docker")
    answer = docker_answer(docker) if docker else "there is no `docker` command"
    if docker and environ.get("GITHUB_WORKSPACE", "").startswith(JOB_CONTAINER_WORKSPACE):
        # A job container (`container:`): its Docker socket is the host's, whose daemon sees
        # the workspace at another path than this container does.
        docker, answer = None, "this job runs in a container, whose paths the engine cannot see"
    if docker and answer.startswith("Docker "):
        reason = "`run-in` is `container`" if way == "container" else "the Docker engine answered"
        return docker, f"{reason} ({answer})."
    if way == "container":
        raise SetupError(
            "No Docker engine",
            f"`run-in` is `container`, but {answer}. Remove `run-in` to run natively here.",
        )
    return None, f"no Docker engine: {answer}."


def docker_answer(docker: str) -> str:
    """`Docker <version>` when the engine answers within DOCKER_TIMEOUT; else what went wrong."""
    try:
        completed = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`docker version` got no answer within {DOCKER_TIMEOUT:.0f} s"
    except OSError as error:
        return f"`docker` could not be started ({error.strerror})"
    version = completed.stdout.strip()
    if completed.returncode == 0 and version:
        return f"Docker {version}"
    said = (completed.stderr.strip().splitlines() or ["no answer"])[-1]
    return f"the engine did not answer `docker version` ({_printable(said)[:200]})"


# --- the container -------------------------------------------------------------------------------


IMAGE_NOT_BUILT = (
    "`docker build` of the action's Dockerfile failed (the log above says why; behind a proxy "
    "that inspects TLS, the image cannot trust its CA). Nothing was published. Set `run-in: "
    "native` to skip the container."
)


def build_image(docker: str) -> str:
    """The image of this action's content: found by its tag (the hash of what goes into it), or
    built, with the runner's proxy settings (by name) and its network; empty if the build
    failed."""
    tag = f"publisher-action:{image_hash()}"
    if _run([docker, "image", "inspect", tag], quiet=True).returncode == 0:
        return tag
    _group(f"Building the action's image {tag}")
    started = time.monotonic()
    proxies = [o for name in PROXY_VARIABLES if name in os.environ for o in ("--build-arg", name)]
    built = _run(
        [
            docker,
            "build",
            "--network",
            "host",
            *proxies,
            "--tag",
            tag,
            "--file",
            str(ACTION / "Dockerfile"),
            str(ACTION),
        ]
    )
    _endgroup()
    if built.returncode != 0:
        return ""
    _say(f"Built the image in {time.monotonic() - started:.1f} s.")
    return tag


def run_in_container(docker: str, image: str, environ: Mapping[str, str]) -> NoReturn:
    """The image run as the runner runs a Docker action: the same variables and folders, at the
    same paths. The runner's signals are sent to the publisher (`docker kill --signal`: the
    client's own forwarding is not to be relied on, and podman's drops it); the exit status is
    the container's; the container is removed afterwards, whatever happens (its configuration
    holds the step's secrets)."""
    container = ""

    def forward(number: int, _frame: object) -> None:
        if not container:
            raise KeyboardInterrupt  # not started yet: nothing was published
        name = signal.Signals(number).name
        subprocess.Popen(
            [docker, "kill", "--signal", name, container],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, forward)
    created = _run([docker, "create", *container_options(environ), image], capture=True)
    if created.returncode != 0:
        raise SetupError("Container not created", _printable(created.stderr.strip()))
    status = 1
    try:
        container = created.stdout.strip()
        # `create`, `start --attach` for the output, then `wait` for the status: `run --rm` and
        # `create --rm` lose it through podman's API, and a failed publish would pass.
        subprocess.run([docker, "start", "--attach", container], env=dict(environ), check=False)
        status = _status(docker, container)
    finally:
        subprocess.run([docker, "rm", "--force", container], capture_output=True, check=False)
    sys.exit(status)


def _status(docker: str, container: str) -> int:
    """The container's exit status, once it has exited (a client cut off by a signal may have
    returned before the publisher was done winding down)."""
    while True:
        try:
            waited = subprocess.run(
                [docker, "wait", container], capture_output=True, text=True, check=False
            )
        except KeyboardInterrupt:  # a signal forwarded while we wait: wait on
            continue
        answer = waited.stdout.strip()
        return int(answer) if waited.returncode == 0 and answer.isdigit() else 1


def container_options(environ: Mapping[str, str]) -> list[str]:
    """`--env NAME` (the value is read from this process: no secret on a command line) for
    what the runner gives a Docker action, and the folders those variables name."""
    names = sorted(
        name
        for name in environ
        if name.startswith(PASSED_TO_CONTAINER) or name in (*PROXY_VARIABLES, "CI")
    )
    workspace = environ.get("GITHUB_WORKSPACE") or os.getcwd()
    folders = [workspace, environ.get("RUNNER_TEMP", "")]
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_EVENT_PATH"):
        if environ.get(name):
            folders.append(str(Path(environ[name]).parent))
    options = ["--network", "host", "--workdir", workspace]
    for folder in _outermost(f for f in folders if f):
        options += ["--volume", f"{folder}:{folder}"]
    for name in names:
        options += ["--env", name]
    return options


def image_hash() -> str:
    digest = hashlib.sha256()
    paths = [ACTION / name for name in IMAGE_INPUTS]
    paths += sorted(
        p for p in (ACTION / "publisher").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    for path in paths:
        digest.update(path.relative_to(ACTION).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _outermost(folders: Iterable[str]) -> list[str]:
    """Each folder once, none inside another one in the list."""
    unique = sorted({str(Path(f)) for f in folders})
    kept: list[str] = []
    for folder in unique:
        if not any(Path(folder).is_relative_to(k) for k in kept):
            kept.append(folder)
    return kept


# --- natively ------------------------------------------------------------------------------------


def native_python() -> str | None:
    """The runner's Python when the lock's wheels fit it (CPython 3.11 or newer, and not on
    Windows ARM64, where cryptography has no wheel: uv installs the x86_64 build, which Windows
    emulates); None: a Python that uv installs."""
    windows_arm = platform.system() == "Windows" and platform.machine().upper() == "ARM64"
    import sysconfig

    new_enough = (
        sys.version_info >= (3, 11)
        and platform.python_implementation() == "CPython"
        and not sysconfig.get_config_var("Py_GIL_DISABLED")  # abi3 wheels do not fit 3.13t
    )
    return sys.executable if new_enough and not windows_arm else None


def run_natively(python: str | None, environ: Mapping[str, str]) -> NoReturn:
    # RUNNER_TEMP: emptied after every job, and this job's alone. Elsewhere a folder of this
    # run's own, never a predictable shared path another user could have filled.
    runner_temp = environ.get("RUNNER_TEMP")
    home = Path(runner_temp) / "publisher-action" if runner_temp else Path(tempfile.mkdtemp())
    venv = environment(home, python, environ)
    # None of the step's PYTHON* settings (as in the container): only the publisher's own code
    # beside the locked packages.
    child = {k: v for k, v in environ.items() if not k.startswith("PYTHON")}
    child.update(PYTHONPATH=str(ACTION), PYTHONNOUSERSITE="1")
    child.pop("VIRTUAL_ENV", None)
    # -P: not the workspace first on sys.path, where a project's own `rich/` or `twine/` would
    # shadow the locked packages.
    _exec([str(venv_python(venv)), "-P", "-m", "publisher"], child)


def environment(home: Path, python: str | None, environ: Mapping[str, str]) -> Path:
    """The virtual environment of the lock for `python`, made once a job: keyed by the lock's
    hash and the interpreter, in the runner's temporary folder (emptied after every job, never
    the workspace), and marked ready only once complete."""
    lock = LOCK.read_bytes()
    key = hashlib.sha256(lock + b"\0" + (python or f"uv {NATIVE_PYTHON}").encode()).hexdigest()
    venv = home / f"venv-{key[:16]}"
    ready = venv / "publisher-ready"
    if ready.is_file() and ready.read_text(encoding="utf-8") == key:
        _say(f"Reusing the environment set up by an earlier step ({venv}).")
        return venv
    started = time.monotonic()
    _group("Setting up the locked environment")
    try:
        shutil.rmtree(venv, ignore_errors=True)
        uv = fetch_uv(home, environ)
        uv_environ = _uv_environ(home, environ)
        target = python or (
            f"cpython-{NATIVE_PYTHON}-windows-x86_64-none"
            if platform.system() == "Windows"
            else NATIVE_PYTHON
        )
        managed = [] if python else ["--managed-python"]
        _check(
            _run(
                # Not the workspace's uv settings (its pyproject.toml, uv.toml): ours.
                [
                    str(uv),
                    "venv",
                    "--quiet",
                    "--no-config",
                    "--no-project",
                    "--allow-existing",
                    *managed,
                    "--python",
                    target,
                    str(venv),
                ],
                environ=uv_environ,
            ),
            "uv could not create the environment",
        )
        _check(
            _run(
                [
                    str(uv),
                    "pip",
                    "install",
                    "--no-build",  # wheels only: no build step runs unhashed code
                    "--quiet",
                    "--python",
                    str(venv_python(venv)),
                    "--no-deps",
                    "--require-hashes",
                    "--no-config",
                    "-r",
                    str(LOCK),
                ],
                environ=uv_environ,
            ),
            "uv could not install the lock",
        )
    finally:
        _endgroup()
    ready.write_text(key, encoding="utf-8")
    _say(f"Set up the locked environment in {time.monotonic() - started:.1f} s ({venv}).")
    return venv


def fetch_uv(home: Path, environ: Mapping[str, str]) -> Path:
    """uv, the lock's pin for this machine, checked against its hash (docker/fetch_uv.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_uv", ACTION / "docker" / "fetch_uv.py")
    assert spec is not None
    assert spec.loader is not None
    fetcher = importlib.util.module_from_spec(spec)  # the image build's script, for this machine
    spec.loader.exec_module(fetcher)
    lock = UV_LOCK.read_text(encoding="utf-8")
    version, _ = fetcher.pinned(lock)
    uv = home / f"uv-{version}" / ("uv.exe" if platform.system() == "Windows" else "uv")
    if not uv.is_file():
        uv.parent.mkdir(parents=True, exist_ok=True)
        partial = uv.with_name(uv.name + ".partial")
        for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
            if environ.get(name):
                os.environ[name] = environ[name]
        if environ.get("PIP_INDEX_URL") and not environ.get("UV_DEFAULT_INDEX"):
            os.environ["UV_DEFAULT_INDEX"] = environ["PIP_INDEX_URL"]
        try:
            fetcher.fetch(lock, partial, certificate_files(environ))
        except SystemExit as error:  # its way of saying what failed
            raise SetupError("uv not fetched", f"uv could not be fetched: {error}") from error
        partial.replace(uv)
    return uv


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if platform.system() == "Windows" else "bin/python")


def certificate_files(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The `ca-certificates` input's files (relative to the workspace), for the set-up's own
    downloads; the publisher checks them in full."""
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    paths = []
    for item in environ.get("INPUT_CA-CERTIFICATES", "").split():
        path = workspace / item
        if not path.is_file():
            raise SetupError(
                "Invalid input `ca-certificates`",
                f"Input `ca-certificates`: `{item}` is not a file in the workspace.",
            )
        paths.append(path)
    return tuple(paths)


def _uv_environ(home: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """uv with the system's CA store (a TLS-inspecting proxy's CA is usually there), plus the
    `ca-certificates` input's, no cache left behind, and its Pythons under `home`; without the
    step's inputs and the OIDC request token (the password among them): uv needs neither."""
    child = {
        name: value
        for name, value in environ.items()
        if not name.startswith(("INPUT_", "ACTIONS_ID_TOKEN_", "PYTHON"))
    }
    child.update(
        UV_SYSTEM_CERTS="1", UV_PYTHON_INSTALL_DIR=str(home / "python"), UV_NO_PROGRESS="1"
    )
    if not environ.get("UV_CACHE_DIR"):  # a runner's own cache, where its admin set one
        child["UV_NO_CACHE"] = "1"
    if environ.get("PIP_INDEX_URL") and not environ.get("UV_DEFAULT_INDEX"):
        child["UV_DEFAULT_INDEX"] = environ["PIP_INDEX_URL"]
    extra = certificate_files(environ)
    if extra:  # uv reads SSL_CERT_FILE instead of the system's store: give it both
        bundle = home / "ca-bundle.pem"
        parts = [_system_certificates()]
        parts += [path.read_text(encoding="utf-8", errors="replace") for path in extra]
        bundle.write_text("\n".join(parts), encoding="utf-8")
        child["SSL_CERT_FILE"] = str(bundle)
    return child


def _system_bundle() -> Path | None:
    import ssl

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _system_certificates() -> str:
    """The system's trusted roots as PEM: its bundle file (Linux), else what Python loads from
    the system store (Windows' certificate store, macOS' keychain through OpenSSL's defaults)."""
    import ssl

    bundle = _system_bundle()
    if bundle is not None:
        return bundle.read_text(encoding="utf-8", errors="replace")
    context = ssl.create_default_context()
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in context.get_ca_certs(binary_form=True))


# --- plumbing ------------------------------------------------------------------------------------


def _exec(command: list[str], environ: dict[str, str]) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # no exec: a child, which gets the console's Ctrl-C and Ctrl-Break too
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGBREAK, signal.SIG_IGN)  # type: ignore[attr-defined]
        sys.exit(subprocess.run(command, env=environ, check=False).returncode)
    try:
        os.execvpe(command[0], command, environ)  # noqa: S606 - the program, with its arguments
    except OSError as error:
        raise SetupError(
            "Set-up failed", f"`{command[0]}` could not be started: {error}"
        ) from error


def _run(
    command: list[str],
    *,
    quiet: bool = False,
    capture: bool = False,
    environ: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    sys.stdout.flush()
    output = subprocess.DEVNULL if quiet else (subprocess.PIPE if capture else None)
    try:
        return subprocess.run(
            command,
            stdout=output,
            stderr=output if quiet else subprocess.PIPE if capture else None,
            text=True,
            env=environ,
            check=False,
        )
    except OSError as error:
        raise SetupError(
            "Set-up failed", f"`{command[0]}` could not be started: {error}"
        ) from error


def _check(completed: subprocess.CompletedProcess[str], problem: str) -> None:
    if completed.returncode != 0:
        raise SetupError(
            "Set-up failed", f"{problem} (the log above says why). Nothing was published."
        )


def _stop_quietly_on_signals() -> None:
    """A cancelled job during the set-up: a line and exit 130, not a traceback."""

    def stop(_number: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)


def _say(line: str) -> None:
    print(_printable(line), flush=True)


def _group(title: str) -> None:
    print(f"::group::{title}" if os.environ.get("GITHUB_ACTIONS") == "true" else title, flush=True)


def _endgroup() -> None:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print("::endgroup::", flush=True)


def _printable(text: str) -> str:
    """One line, no control characters, no workflow command (a docker error quotes anything)."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text).replace("##[", "##[\\")
    return "\\" + text if text.lstrip().startswith("::") else text


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _annotation(kind: str, title: str, message: str) -> str:
    title = _escape(title).replace(":", "%3A").replace(",", "%2C")
    return f"::{kind} title={title}::{_escape(message)}"


def _warn(title: str, message: str) -> None:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(_annotation("warning", title, message), flush=True)
    else:
        print(f"warning: {title}\n  {message}", file=sys.stderr, flush=True)


def _fail(title: str, message: str, environ: Mapping[str, str]) -> NoReturn:
    if environ.get("GITHUB_ACTIONS") == "true":
        print(_annotation("error", title, message), flush=True)
    else:
        print(f"error: {title}\n  {message}", file=sys.stderr, flush=True)
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(f"### ❌ {title}\n\n{message}\n")
    sys.exit(1)


if __name__ == "__main__":
    main()
