"""action.yml and action/launch.py: what a runner gets, and which way the publisher runs.

The inputs and outputs that action.yml declares, the README documents and the publisher reads
must be the same; the launcher's choice is checked against real `docker` commands (small
scripts on PATH that answer as an engine would, hang, or fail as ubuntu-slim's client does).
The runs themselves, through a real runner implementation, are in tests/test_action.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from publisher.report import OUTPUT_NAMES
from publisher.settings import ALIASES, DEFAULTS
from tests.conftest import ROOT, build_dists, load_script
from tests.tls import Proxy, make_authority

launch = load_script(ROOT / "action" / "launch.py")
ACTION: dict[str, Any] = YAML(typ="safe").load((ROOT / "action.yml").read_text())
README = (ROOT / "README.md").read_text()


def readme_table(heading: str) -> dict[str, list[str]]:
    """The rows of the table under `heading`: first cell (without backticks) -> the others."""
    section = README.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) > 1:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


# --- action.yml, the README and the settings agree ------------------------------------------


def test_action_yml_declares_every_input_the_publisher_reads_and_nothing_else() -> None:
    declared = set(ACTION["inputs"])

    assert declared == set(DEFAULTS) | set(ALIASES.values())


def test_every_input_reaches_the_publisher_as_the_runner_gives_a_docker_action_its_inputs() -> None:
    """`INPUT_<NAME>` with hyphens kept, each from its own input."""
    (step,) = ACTION["runs"]["steps"]
    env = step["env"]

    assert ACTION["runs"]["using"] == "composite"
    assert env.pop("MSYS2_ENV_CONV_EXCL") == "INPUT_"  # Git Bash: inputs are not paths to convert
    assert env == {
        f"INPUT_{name.upper()}": f"${{{{ inputs.{name} }}}}" for name in ACTION["inputs"]
    }
    assert "${{" not in step["run"]  # nothing of an input is pasted into the script


def test_the_defaults_in_action_yml_are_the_publisher_s() -> None:
    for name, spec in ACTION["inputs"].items():
        if name in ALIASES or name in ALIASES.values() or name == "attestations":
            # no default: the runner would pass it even when only the alias is set, and an
            # explicit `attestations: true` means more than the default
            assert "default" not in spec, name
        else:
            assert str(spec.get("default", "")) == DEFAULTS[name], name


def test_the_readme_documents_every_input_with_its_default() -> None:
    rows = readme_table("### Inputs")

    assert set(rows) == set(DEFAULTS)
    for name, (default, _meaning) in rows.items():
        if name not in ("attestations", "index-url"):  # documented as what the default does
            expected = f"`{DEFAULTS[name]}`" if DEFAULTS[name] else "(empty)"
            assert default == expected, name
    for alias in ALIASES.values():
        assert f"`{alias}`" in README


def test_action_yml_the_readme_and_the_report_have_the_same_outputs() -> None:
    declared = ACTION["outputs"]

    assert set(declared) == set(OUTPUT_NAMES) == set(readme_table("### Outputs"))
    for name, spec in declared.items():
        assert spec["value"] == f"${{{{ steps.publish.outputs.{name} }}}}"


# --- which way -----------------------------------------------------------------------------------


def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A `docker` command on PATH that does what `script` (bash) says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/bash\n{script}\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(launch.platform, "system", lambda: "Linux")


def test_an_engine_that_answers_means_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_docker(tmp_path, monkeypatch, 'echo "29.1.3"')

    docker, why = launch.decide("auto", os.environ)

    assert docker == str(tmp_path / "bin" / "docker")
    assert why == "the Docker engine answered (Docker 29.1.3)."


def test_a_client_without_a_daemon_means_natively_as_on_ubuntu_slim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_docker(
        tmp_path,
        monkeypatch,
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker '
        'daemon running?" >&2; exit 1',
    )

    docker, why = launch.decide("auto", os.environ)

    assert docker is None
    assert why.startswith("no Docker engine: the engine did not answer `docker version` (Cannot")


def test_an_engine_that_hangs_is_given_two_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_docker(tmp_path, monkeypatch, "exec sleep 30")
    started = time.monotonic()

    docker, why = launch.decide("auto", os.environ)

    assert time.monotonic() - started < 3.0
    assert docker is None
    assert why == "no Docker engine: `docker version` got no answer within 2 s."


def test_in_a_job_container_the_host_engine_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job with `container:` sees the host's Docker socket, whose daemon would mount the host
    paths of the same names, not the job's workspace."""
    fake_docker(tmp_path, monkeypatch, 'echo "29.1.3"')
    environ = {"GITHUB_WORKSPACE": "/__w/example-pkg/example-pkg"}

    docker, why = launch.decide("auto", environ)

    assert docker is None
    assert (
        why == "no Docker engine: this job runs in a container, whose paths the engine cannot see."
    )


def test_no_docker_command_means_natively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(launch.platform, "system", lambda: "Linux")

    assert launch.decide("auto", os.environ) == (
        None,
        "no Docker engine: there is no `docker` command.",
    )


@pytest.mark.parametrize("system", ["Darwin", "Windows"])
def test_macos_and_windows_run_natively_even_with_docker(
    system: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_docker(tmp_path, monkeypatch, 'echo "29.1.3"')
    monkeypatch.setattr(launch.platform, "system", lambda: system)

    assert launch.decide("auto", os.environ) == (
        None,
        f"{system} runners run no Docker containers for actions.",
    )
    with pytest.raises(launch.SetupError, match="Docker container actions run only on Linux"):
        launch.decide("container", os.environ)


def test_the_input_forces_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_docker(tmp_path, monkeypatch, 'echo "29.1.3"')
    assert launch.decide("native", os.environ) == (None, "`run-in` is `native`.")
    assert launch.decide("container", os.environ)[1] == "`run-in` is `container` (Docker 29.1.3)."

    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(launch.SetupError) as refused:
        launch.decide("container", os.environ)
    assert "`run-in` is `container`, but there is no `docker` command" in refused.value.message


# --- the container's options, and the native environment ------------------------------------


def test_the_container_gets_variables_by_name_and_the_runner_s_folders(tmp_path: Path) -> None:
    workspace, temp, commands = tmp_path / "work", tmp_path / "temp", tmp_path / "cmd"
    environ = {
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(commands / "set_output_1"),
        "GITHUB_STEP_SUMMARY": str(commands / "step_summary_1"),
        "GITHUB_EVENT_PATH": str(temp / "_github_workflow" / "event.json"),
        "INPUT_PASSWORD": "s3cret-value",
        "INPUT_REPOSITORY-URL": "https://upload.example/legacy/",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "bearer-value",
        "HTTPS_PROXY": "http://proxy.example:3128",
        "HOME": "/home/runner",
        "AWS_SECRET_ACCESS_KEY": "not ours",
    }

    options = launch.container_options(environ)

    assert "s3cret-value" not in " ".join(options)
    assert "bearer-value" not in " ".join(options)
    names = [options[i + 1] for i, o in enumerate(options) if o == "--env"]
    assert "INPUT_PASSWORD" in names
    assert "INPUT_REPOSITORY-URL" in names
    assert "HTTPS_PROXY" in names
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert "HOME" not in names
    volumes = [options[i + 1] for i, o in enumerate(options) if o == "--volume"]
    assert sorted(volumes) == sorted(f"{p}:{p}" for p in (commands, temp, workspace))
    assert options[options.index("--workdir") + 1] == str(workspace)


def test_the_image_tag_follows_what_goes_into_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "action"
    sources = [f"publisher/{p.name}" for p in launch.ACTION.glob("publisher/*.py")]
    for name in (*launch.IMAGE_INPUTS, *sources):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((launch.ACTION / name).read_bytes())
    monkeypatch.setattr(launch, "ACTION", copy)
    before = launch.image_hash()

    (copy / "README.md").write_text("not in the image")
    same = launch.image_hash()
    (copy / "publisher" / "upload.py").write_text("# changed\n", encoding="utf-8")

    assert same == before
    assert launch.image_hash() != before
    assert re.fullmatch(r"[0-9a-f]{16}", before)


def test_a_ready_environment_is_reused_without_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second publish step of a job: the marker written last says the set-up completed."""
    import hashlib

    key = hashlib.sha256(launch.LOCK.read_bytes() + b"\0" + sys.executable.encode()).hexdigest()
    venv = tmp_path / f"venv-{key[:16]}"
    venv.mkdir()
    (venv / "publisher-ready").write_text(key)
    monkeypatch.setattr(launch, "fetch_uv", lambda *_: pytest.fail("fetched uv again"))

    assert launch.environment(tmp_path, sys.executable, {}) == venv
    assert "Reusing the environment set up by an earlier step" in capsys.readouterr().out


def test_windows_paths_and_pythons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch.platform, "system", lambda: "Windows")
    assert launch.venv_python(Path("venv")) == Path("venv/Scripts/python.exe")

    monkeypatch.setattr(launch.platform, "machine", lambda: "ARM64")
    assert launch.native_python() is None  # no win_arm64 wheel of cryptography: x86_64 Python
    monkeypatch.setattr(launch.platform, "machine", lambda: "AMD64")
    assert launch.native_python() == sys.executable  # 3.11 or newer, as this test's Python


def test_an_old_python_gets_one_from_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch.sys, "version_info", (3, 10, 12))

    assert launch.native_python() is None


# --- the native set-up behind a proxy ---------------------------------------------------------


def set_up_natively(tmp_path: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The action's step with no engine, as the runner starts it, for a dry run (the set-up is
    what is tested): uv fetched, the lock installed, from the package index, through `environ`'s
    proxy. No uv cache: every file is downloaded."""
    workspace = tmp_path / "workspace"
    build_dists(workspace / "dist")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_WORKSPACE": str(workspace),
        "INPUT_RUN-IN": "native",
        "INPUT_DRY-RUN": "true",
        "INPUT_REPOSITORY-URL": "http://127.0.0.1:9/legacy/",
        "PUBLISHER_RETRY_DELAY": "0.05",
        **{k: v for k, v in os.environ.items() if k.startswith(("UV_INDEX", "UV_DEFAULT"))},
        **environ,
    }
    return subprocess.run(
        ["bash", "-c", f'exec python3 "{ROOT}/action/launch.py"'],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_native_set_up_goes_through_the_proxy(tmp_path: Path) -> None:
    proxy = Proxy(tmp_path / "proxy")
    try:
        run = set_up_natively(tmp_path, {"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"})
    finally:
        proxy.close()

    assert run.returncode == 0, run.stdout + run.stderr
    assert "Set up the locked environment" in run.stdout
    tunnels = [r for r in proxy.requests() if r[0] == "CONNECT"]
    assert tunnels, "uv and the lock were not fetched through the proxy"


def test_a_tls_inspecting_proxy_is_trusted_through_ca_certificates(tmp_path: Path) -> None:
    """The proxy re-signs every site with its own CA, as a corporate one does: the set-up (uv's
    fetch, and uv's install) trusts it only because `ca-certificates` names it."""
    authority = make_authority("Example Corp Inspecting CA", "Example Corp")
    system = launch._system_bundle()
    assert system is not None
    proxy = Proxy(tmp_path / "proxy", intercept=authority, upstream_ca=system)
    (tmp_path / "workspace").mkdir()
    authority.write(tmp_path / "workspace" / "corp-ca.pem")
    environ = {"HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1", "SSL_CERT_FILE": ""}
    try:
        refused = set_up_natively(tmp_path / "without", environ)
        trusted = set_up_natively(tmp_path, environ | {"INPUT_CA-CERTIFICATES": "corp-ca.pem"})
    finally:
        proxy.close()

    assert refused.returncode != 0
    said = refused.stdout + refused.stderr  # on a laptop, errors go to stderr
    assert "uv could not be fetched" in said
    assert "CERTIFICATE_VERIFY_FAILED" in said
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "Set up the locked environment" in trusted.stdout
    inside = [r for r in proxy.requests() if r[0] == "GET"]  # seen: the proxy decrypted them
    assert any(path.endswith(".whl") for _method, _host, path in inside)
