"""The image's lock cannot drift from pyproject.toml.

`docker/requirements.txt` is what the image (and the native set-up) installs (`--no-deps
--require-hashes`), compiled from `docker/requirements.in` by the README's command ("Updating the
lock") with the overrides in `docker/pyproject.toml`. These checks read those files and nothing
else: the lock is judged by what its own resolution records (every pin says, in its `# via`
lines, which requirements brought it in), never by what happens to be installed here or what
the index serves this week. The same files give the same verdict on any day, offline.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging import tags
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
FROM_REQUIREMENTS_IN = "-r requirements.in"

# Every interpreter the lock serves: the image's (CPython 3.13 on Linux) and the native way's (the
# runner's Python or one uv installs, 3.11 and newer, on Linux, macOS and Windows, x86_64 and
# arm64), as the markers of each platform spell them.
PLATFORMS = (
    ("Linux", "linux", "posix", "x86_64"),
    ("Linux", "linux", "posix", "aarch64"),
    ("Darwin", "darwin", "posix", "x86_64"),
    ("Darwin", "darwin", "posix", "arm64"),
    ("Windows", "win32", "nt", "AMD64"),
    ("Windows", "win32", "nt", "ARM64"),
)
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
ENVIRONMENTS = tuple(
    {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": os_name,
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": sys_platform,
    }
    for (system, sys_platform, os_name, machine), python in itertools.product(PLATFORMS, PYTHONS)
)


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]
    via: tuple[str, ...]  # what brought it in: `-r requirements.in` or the names of other pins

    def applies(self, environment: Mapping[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(dict(environment))


def where(environment: Mapping[str, str]) -> str:
    return (
        f"{environment['platform_system']} {environment['platform_machine']} "
        f"Python {environment['python_version']}"
    )


def lock_problems(
    pyproject_text: str,
    requirements_in_text: str,
    lock_text: str,
    overrides: Sequence[str] = (),
) -> list[str]:
    """Every way the lock disagrees with pyproject.toml, as sentences; empty when they agree.

    `overrides` are uv's override-dependencies: one with a marker that is never true drops its
    project from the resolution, so the lock must not pin it.
    """
    problems: dict[str, None] = {}  # ordered, without the repeats of several environments
    declared = _requirements(tomllib.loads(pyproject_text)["project"]["dependencies"])
    wanted = _requirements(_requirement_lines(requirements_in_text))
    for name in declared.keys() - wanted.keys():
        problems[f"{name}: in pyproject.toml but not in docker/requirements.in"] = None
    for name in wanted.keys() - declared.keys():
        problems[f"{name}: in docker/requirements.in but not in pyproject.toml"] = None
    for name in declared.keys() & wanted.keys():
        if not _same(declared[name], wanted[name]):
            problems[
                f"{name}: pyproject.toml asks for `{declared[name]}`, "
                f"docker/requirements.in for `{wanted[name]}`"
            ] = None

    pins = _parse_lock(lock_text, problems)
    _check_roots(wanted, pins, problems)
    _check_resolution(pins, problems)
    for name in _dropped(overrides) & pins.keys():
        problems[
            f"{name}: pinned in the lock, but the overrides in docker/pyproject.toml drop it "
            "(was the lock compiled without them? run the command in docker/)"
        ] = None
    return list(problems)


def _requirement_lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _requirements(lines: Iterable[str]) -> dict[NormalizedName, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def _same(a: Requirement, b: Requirement) -> bool:
    return (a.specifier, a.extras, str(a.marker), a.url) == (
        b.specifier,
        b.extras,
        str(b.marker),
        b.url,
    )


def _dropped(overrides: Sequence[str]) -> set[NormalizedName]:
    """The projects an override removes everywhere: its marker holds in no environment."""
    dropped = set()
    for requirement in map(Requirement, overrides):
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({**env, "extra": ""}) for env in ENVIRONMENTS
        ):
            dropped.add(canonicalize_name(requirement.name))
    return dropped


def _parse_lock(lock_text: str, problems: dict[str, None]) -> dict[NormalizedName, list[Pin]]:
    """The pins, each with its hashes and its `# via` annotations (one line, or a list)."""
    pins: dict[NormalizedName, list[Pin]] = {}
    for entry in re.split(r"\n(?=\S)", lock_text):
        lines = entry.splitlines()
        if not lines or lines[0].startswith(("#", "-")) or not lines[0].strip():
            continue
        text = " ".join(line for line in lines if not line.lstrip().startswith("#"))
        text = text.replace("\\", " ")
        hashes = tuple(re.findall(r"--hash[=\s]sha256:([0-9a-f]{64})\b", text))
        text = re.sub(r"--hash[=\s]\S+", "", text).strip()
        via = _via(lines)
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        exact = [s for s in requirement.specifier if s.operator in ("==", "===")]
        if len(requirement.specifier) != 1 or not exact or "*" in exact[0].version:
            problems[f"{name}: `{text}` in the lock is not pinned with `==`"] = None
            continue
        try:
            version = Version(exact[0].version)
        except InvalidVersion:
            problems[f"{name}: `{text}` in the lock has no valid version"] = None
            continue
        if not hashes:
            problems[f"{name}=={version}: no `--hash=sha256:` in the lock"] = None
        pins.setdefault(name, []).append(Pin(name, version, requirement.marker, hashes, via))
    return pins


def _via(lines: Sequence[str]) -> tuple[str, ...]:
    """`# via x` or `# via` followed by `#   x` lines, as uv writes them."""
    comments = [line.strip().removeprefix("#").strip() for line in lines[1:]]
    comments = [c for c in comments if c]
    for number, comment in enumerate(comments):
        if comment == "via":
            return tuple(c for c in comments[number + 1 :])
        if comment.startswith("via "):
            return tuple(part.strip() for part in comment[4:].split(","))
    return ()


def _parents(pin: Pin) -> list[str]:
    """What brought `pin` in: requirements.in or other pins, not a constraint (`-c ...`), which
    only bounds a version (docker/pyproject.toml's constraint-dependencies)."""
    return [
        v if v.startswith("-r ") else canonicalize_name(v)
        for v in pin.via
        if not v.startswith("-c ")
    ]


def _check_roots(
    wanted: Mapping[NormalizedName, Requirement],
    pins: Mapping[NormalizedName, list[Pin]],
    problems: dict[str, None],
) -> None:
    """Each requirement of docker/requirements.in: one pin on every platform, and one that
    satisfies its specifier, recorded as brought in by requirements.in."""
    for name, requirement in wanted.items():
        for environment in ENVIRONMENTS:
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
                continue
            candidates = [p for p in pins.get(name, []) if p.applies(environment)]
            if len(candidates) != 1:
                how = "not pinned" if not candidates else "pinned more than once"
                problems[f"{name} (in docker/requirements.in): {how} for {where(environment)}"] = (
                    None
                )
                continue
            pin = candidates[0]
            if not requirement.specifier.contains(pin.version, prereleases=True):
                problems[
                    f"{name}=={pin.version} in the lock does not satisfy `{requirement}` "
                    "(docker/requirements.in)"
                ] = None
            if FROM_REQUIREMENTS_IN not in pin.via:
                problems[
                    f"{name}=={pin.version}: the lock does not record it as coming from "
                    "docker/requirements.in (compiled from another file?)"
                ] = None


def _check_resolution(pins: Mapping[NormalizedName, list[Pin]], problems: dict[str, None]) -> None:
    """Every pin was brought in by requirements.in or by another pin that was, and on every
    platform where it applies, the pin that brought it in applies too."""
    for environment in ENVIRONMENTS:
        here = {
            name: [p for p in candidates if p.applies(environment)]
            for name, candidates in pins.items()
        }
        for name, candidates in here.items():
            if len(candidates) > 1:
                problems[f"{name}: pinned more than once for {where(environment)}"] = None
        reached = {n for n, c in here.items() if any(FROM_REQUIREMENTS_IN in p.via for p in c)}
        growing = True
        while growing:
            more = {
                n
                for n, c in here.items()
                if n not in reached and any(v in reached for p in c for v in _parents(p))
            }
            reached |= more
            growing = bool(more)
        for name, candidates in here.items():
            for pin in candidates:
                missing = [v for v in _parents(pin) if v != FROM_REQUIREMENTS_IN and v not in pins]
                for parent in missing:
                    problems[
                        f"{name}=={pin.version} (needed by {parent}): {parent} is not pinned "
                        "in the lock"
                    ] = None
                if name not in reached and not missing:
                    problems[
                        f"{name}: pinned in the lock for {where(environment)}, but nothing in "
                        "docker/requirements.in needs it there"
                    ] = None


# --- the real files ---------------------------------------------------------------------------


def dockerfile() -> str:
    return (DOCKER.parent / "Dockerfile").read_text()


def test_the_lock_agrees_with_pyproject() -> None:
    uv = tomllib.loads((DOCKER / "pyproject.toml").read_text())["tool"]["uv"]
    problems = lock_problems(
        (DOCKER.parent / "pyproject.toml").read_text(),
        (DOCKER / "requirements.in").read_text(),
        (DOCKER / "requirements.txt").read_text(),
        uv["override-dependencies"],
    )

    assert problems == [], "\n".join(
        ["The lock disagrees with pyproject.toml; see the README, 'Updating the lock':", *problems]
    )


def test_the_dockerfile_installs_only_hash_locked_files() -> None:
    """uv comes from fetch_uv.py, which checks its hash against build-requirements.txt (see
    tests/test_fetch_uv.py); uv installs the lock, and nothing but pinned, hashed files."""
    commands = dockerfile().replace("\\\n", " ").split("&&")
    installs = [c for c in commands if " install " in c]
    assert len(installs) == 1, installs
    assert "--no-deps" in installs[0]
    assert "--require-hashes" in installs[0]
    assert "-r /tmp/build/requirements.txt" in installs[0]
    assert "python /tmp/build/fetch_uv.py /tmp/build/build-requirements.txt" in commands[0]
    for name in ("requirements.txt", "build-requirements.txt"):
        assert f"docker/{name}" in dockerfile()
        problems: dict[str, None] = {}
        pins = _parse_lock((DOCKER / name).read_text(), problems)
        assert pins, name
        assert list(problems) == [], f"{name}: {list(problems)}"  # e.g. a pin without hashes


def test_the_locks_are_compiled_for_every_python_the_action_runs_on() -> None:
    """From the oldest Python pyproject.toml allows (the native way runs on the runner's own
    Python when it is new enough) on every platform; the image's Python is among them.
    Dependabot recompiles with the options it finds in a lock: keep them in its header."""
    requires = tomllib.loads((DOCKER.parent / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    oldest = re.fullmatch(r">=(\d+\.\d+)", requires)
    image = re.search(r"^FROM python:(\d+\.\d+)-slim@sha256:[0-9a-f]{64} ", dockerfile(), re.M)

    assert oldest, f"requires-python is `>=X.Y`, not {requires!r}"
    assert image, "the Dockerfile's FROM line names python:X.Y-slim by digest"
    assert Version(oldest[1]) <= Version(image[1])
    assert oldest[1] == PYTHONS[0]
    for name in ("requirements.txt", "build-requirements.txt"):
        header = (DOCKER / name).read_text().split("\n", 2)[1]
        assert f"--python-version {oldest[1]} " in header, name
        assert "--universal " in header, name
        assert "--generate-hashes " in header, name


def test_the_tests_run_the_locked_versions_and_pinned_tools() -> None:
    """The README's test command installs with `-c tests/constraints.txt`: the runtime
    dependencies at the versions the image ships, and every test tool (ruff, mypy, zizmor...)
    pinned, so that no test's verdict changes when something is released upstream."""
    problems: dict[str, None] = {}
    shipped = _parse_lock((DOCKER / "requirements.txt").read_text(), problems)
    tests = {}
    for entry in re.split(r"\n(?=\S)", (ROOT / "tests" / "constraints.txt").read_text()):
        line = entry.splitlines()[0] if entry.strip() else "#"
        if not line.startswith("#"):
            requirement = Requirement(line)
            tests[canonicalize_name(requirement.name)] = requirement
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["test"]

    here = {k: str(v) for k, v in default_environment().items()}  # this test environment
    for name, pins in shipped.items():
        for pin in (p for p in pins if p.applies(here)):
            assert name in tests, (
                f"{name}: pinned in docker/requirements.txt, not in tests/constraints.txt"
            )
            assert tests[name].specifier.contains(pin.version), (
                f"{name}: tests/constraints.txt has `{tests[name]}`, the lock {pin.version}"
            )
    for requirement in map(Requirement, extra):
        pinned = tests.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name}: a test tool not in tests/constraints.txt"
        assert requirement.specifier.contains(next(iter(pinned.specifier)).version)
    assert "-c tests/constraints.txt" in (ROOT / "README.md").read_text()


# Wheel platform tags each platform takes: glibc 2.35 (ubuntu-22.04, the oldest hosted Linux),
# macOS 13 on Intel and 14 on Apple silicon. Windows on ARM64 runs the x86_64 build of Python
# (emulated: action/launch.py asks uv for it), since cryptography and rfc3161-client publish no
# win_arm64 wheels.
def _linux(machine: str) -> list[str]:
    legacy = ["manylinux2014", "manylinux2010", "manylinux1"]
    return [f"manylinux_2_{minor}_{machine}" for minor in range(35, 4, -1)] + [
        f"{tag}_{machine}" for tag in legacy
    ]


WHEEL_PLATFORMS = {
    ("Linux", "x86_64"): _linux("x86_64"),
    ("Linux", "aarch64"): _linux("aarch64"),
    ("Darwin", "x86_64"): list(tags.mac_platforms((13, 0), "x86_64")),
    ("Darwin", "arm64"): list(tags.mac_platforms((14, 0), "arm64")),
    ("Windows", "AMD64"): ["win_amd64"],
    ("Windows", "ARM64"): ["win_amd64"],
}


def files_of(text: str) -> dict[tuple[NormalizedName, Version], list[str]]:
    """docker/files.txt: the file names of each pin."""
    files: dict[tuple[NormalizedName, Version], list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            pin, _sha256, filename = line.split()
            name, _, version = pin.partition("==")
            files.setdefault((canonicalize_name(name), Version(version)), []).append(filename)
    return files


def wheel_problems(lock_text: str, files_text: str) -> list[str]:
    """Every pin that some platform needs and has no wheel for, as sentences."""
    problems: dict[str, None] = {}
    pins = _parse_lock(lock_text, problems)
    files = files_of(files_text)
    for environment in ENVIRONMENTS:
        python = tuple(int(part) for part in environment["python_version"].split("."))
        platforms = WHEEL_PLATFORMS[
            (environment["platform_system"], environment["platform_machine"])
        ]
        interpreter = f"cp{python[0]}{python[1]}"
        supported = {
            *tags.cpython_tags(python, platforms=platforms),
            *tags.compatible_tags(python, interpreter, platforms),
        }
        for pin in (p for candidates in pins.values() for p in candidates):
            if not pin.applies(environment):
                continue
            names = files.get((pin.name, pin.version))
            if names is None:
                problems[
                    f"{pin.name}=={pin.version}: not in docker/files.txt (python lock_files.py)"
                ] = None
                continue
            wheels = [parse_wheel_filename(n)[3] for n in names if n.endswith(".whl")]
            if not any(supported & set(tags_) for tags_ in wheels):
                problems[f"{pin.name}=={pin.version}: no wheel for {where(environment)}"] = None
    return list(problems)


def test_every_platform_has_a_wheel_of_every_pin_it_needs() -> None:
    """The native way installs the lock on the runner's machine: Linux, macOS and Windows on
    x86_64 and arm64, any Python from 3.11. Without a wheel it would build from source (a Rust
    toolchain for cryptography) or fail."""
    problems = wheel_problems(
        (DOCKER / "requirements.txt").read_text(), (DOCKER / "files.txt").read_text()
    )

    assert problems == [], "\n".join(problems)


def test_files_txt_names_only_files_of_the_lock() -> None:
    lock = (DOCKER / "requirements.txt").read_text()
    allowed = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", lock))
    listed = [
        line.split()[1]
        for line in (DOCKER / "files.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert listed
    assert set(listed) <= allowed


def test_a_platform_without_a_wheel_is_reported() -> None:
    lock = LOCK.replace("gamma==3.1", "gamma==3.1 ; sys_platform != 'win32'") + (
        f"gamma==3.0 ; sys_platform == 'win32' \\\n    {HASH}\n    # via alpha\n"
    )
    files = "\n".join(
        [
            f"alpha==1.5 {'ab' * 32} alpha-1.5-py3-none-any.whl",
            f"beta==2.0 {'ab' * 32} beta-2.0.tar.gz",
            f"beta==2.0 {'ab' * 32} beta-2.0-py3-none-any.whl",
            f"gamma==3.1 {'ab' * 32} gamma-3.1-cp311-abi3-manylinux_2_28_x86_64.whl",
            f"gamma==3.1 {'cd' * 32} gamma-3.1-cp311-abi3-macosx_11_0_arm64.whl",
            f"gamma==3.0 {'ab' * 32} gamma-3.0-cp312-cp312-win_amd64.whl",
            f"winreg-helper==1.0 {'ab' * 32} winreg_helper-1.0-py3-none-any.whl",
        ]
    )

    problems = wheel_problems(lock, files)

    assert "gamma==3.1: no wheel for Linux aarch64 Python 3.11" in problems
    assert "gamma==3.1: no wheel for Darwin x86_64 Python 3.14" in problems
    assert "gamma==3.0: no wheel for Windows AMD64 Python 3.11" in problems
    assert "gamma==3.0: no wheel for Windows ARM64 Python 3.13" in problems  # a cp312 wheel
    assert "gamma==3.0: no wheel for Windows ARM64 Python 3.12" not in problems  # as x86_64
    assert not any("Linux x86_64" in p or "Darwin arm64" in p for p in problems)
    assert not any(p.startswith(("alpha", "beta", "winreg")) for p in problems)
    assert wheel_problems(LOCK, files.replace("alpha==1.5", "alpha==1.4"))[0] == (
        "alpha==1.5: not in docker/files.txt (python lock_files.py)"
    )


# --- the check itself, on small made-up files -------------------------------------------------

PYPROJECT = """
[project]
name = "demo"
dependencies = ["alpha>=1", "beta>=2"]
"""
REQUIREMENTS_IN = "# the runtime dependencies\nalpha>=1\nbeta>=2\n"
OVERRIDES = ["keyring; python_version < '0'"]
HASH = "--hash=sha256:" + "ab" * 32
LOCK = f"""# This file was autogenerated by uv via the following command:
#    uv pip compile requirements.in --universal --generate-hashes -o requirements.txt
alpha==1.5 \\
    {HASH}
    # via
    #   -r requirements.in
    #   beta
beta==2.0 \\
    {HASH}
    # via -r requirements.in
gamma==3.1 \\
    {HASH} \\
    --hash=sha256:{"cd" * 32}
    # via alpha
winreg-helper==1.0 ; sys_platform == 'win32' \\
    {HASH}
    # via gamma
"""


def problems_with(
    pyproject: str = PYPROJECT,
    requirements_in: str = REQUIREMENTS_IN,
    lock: str = LOCK,
    overrides: Sequence[str] = tuple(OVERRIDES),
) -> list[str]:
    return lock_problems(pyproject, requirements_in, lock, overrides)


def test_files_that_agree_have_no_problems() -> None:
    assert problems_with() == []


def test_the_verdict_reads_nothing_but_the_files() -> None:
    """Not what is installed here: a package the lock pins need not be installed at all."""
    from importlib.metadata import PackageNotFoundError, distribution

    with pytest.raises(PackageNotFoundError):
        distribution("winreg-helper")
    assert problems_with() == []


def test_a_drifted_specifier_is_reported() -> None:
    problems = problems_with(requirements_in="alpha>=1.6\nbeta>=2\n")

    assert problems == [
        "alpha: pyproject.toml asks for `alpha>=1`, docker/requirements.in for `alpha>=1.6`",
        "alpha==1.5 in the lock does not satisfy `alpha>=1.6` (docker/requirements.in)",
    ]


def test_a_dependency_missing_on_either_side_is_reported() -> None:
    assert problems_with(requirements_in="alpha>=1\n") == [
        "beta: in pyproject.toml but not in docker/requirements.in"
    ]
    assert problems_with(requirements_in=REQUIREMENTS_IN + "delta>=1\n") == [
        "delta: in docker/requirements.in but not in pyproject.toml",
        *(f"delta (in docker/requirements.in): not pinned for {where(e)}" for e in ENVIRONMENTS),
    ]


def test_a_requirement_added_without_recompiling_is_not_pinned() -> None:
    pyproject = PYPROJECT.replace('"beta>=2"', '"beta>=2", "delta>=1"')

    problems = problems_with(pyproject=pyproject, requirements_in=REQUIREMENTS_IN + "delta>=1\n")

    assert (
        problems[0] == "delta (in docker/requirements.in): not pinned for Linux x86_64 Python 3.11"
    )
    assert len(problems) == len(ENVIRONMENTS)


def test_a_pin_whose_parent_is_missing_is_reported() -> None:
    lock = LOCK.replace("# via alpha", "# via epsilon")

    problems = problems_with(lock=lock)

    assert problems[0] == "gamma==3.1 (needed by epsilon): epsilon is not pinned in the lock"
    assert all(p.startswith(("gamma==3.1", "winreg-helper: ")) for p in problems)


def test_a_pin_nothing_needs_is_reported() -> None:
    """As when pypi-attestations stopped needing pyasn1 and the lock was not recompiled by the
    README's command; a pin left over by hand records nothing at all."""
    leftover = LOCK + f"pyasn1==0.6.5 \\\n    {HASH}\n"

    assert problems_with(lock=leftover)[0] == (
        "pyasn1: pinned in the lock for Linux x86_64 Python 3.11, but nothing in "
        "docker/requirements.in needs it there"
    )


def test_a_pin_brought_in_only_on_another_platform_is_reported() -> None:
    """winreg-helper is pinned everywhere, but what needs it is pinned for Windows only."""
    lock = LOCK.replace(
        "winreg-helper==1.0 ; sys_platform == 'win32' \\\n    " + HASH + "\n    # via gamma\n",
        "winreg-helper==1.0 \\\n    " + HASH + "\n    # via win-only\n"
        "win-only==1.0 ; sys_platform == 'win32' \\\n    " + HASH + "\n    # via gamma\n",
    )

    problems = problems_with(lock=lock)

    assert problems[0] == (
        "winreg-helper: pinned in the lock for Linux x86_64 Python 3.11, but nothing in "
        "docker/requirements.in needs it there"
    )
    assert len(problems) == len([e for e in ENVIRONMENTS if e["sys_platform"] != "win32"])


def test_a_pin_without_hashes_is_reported() -> None:
    lock = LOCK.replace(f"beta==2.0 \\\n    {HASH}\n", "beta==2.0\n")

    assert problems_with(lock=lock) == ["beta==2.0: no `--hash=sha256:` in the lock"]


def test_a_range_in_the_lock_is_not_a_pin() -> None:
    lock = LOCK.replace("gamma==3.1", "gamma>=3.1")

    assert problems_with(lock=lock)[0] == "gamma: `gamma>=3.1` in the lock is not pinned with `==`"


def test_a_pin_twice_on_one_platform_is_reported() -> None:
    lock = LOCK + f"gamma==3.2 ; sys_platform == 'darwin' \\\n    {HASH}\n    # via alpha\n"

    assert problems_with(lock=lock) == [
        f"gamma: pinned more than once for Darwin {machine} Python {python}"
        for machine in ("x86_64", "arm64")
        for python in PYTHONS
    ]


def test_a_root_compiled_from_another_file_is_reported() -> None:
    lock = LOCK.replace("# via -r requirements.in", "# via -r other.in")

    assert (
        "beta==2.0: the lock does not record it as coming from docker/requirements.in "
        in (problems_with(lock=lock)[0])
    )


def test_a_lock_compiled_without_the_overrides_is_reported() -> None:
    with_keyring = LOCK + f"keyring==25.0 \\\n    {HASH}\n    # via beta\n"

    assert problems_with(lock=with_keyring) == [
        "keyring: pinned in the lock, but the overrides in docker/pyproject.toml drop it (was "
        "the lock compiled without them? run the command in docker/)"
    ]
    assert problems_with(lock=with_keyring, overrides=()) == []


def test_markers_of_pins_are_evaluated_on_every_platform() -> None:
    lock = LOCK.replace("beta==2.0 \\", "beta==2.0 ; platform_machine == 'x86_64' \\")

    problems = problems_with(lock=lock)

    assert "beta (in docker/requirements.in): not pinned for Linux aarch64 Python 3.11" in problems
    assert "beta (in docker/requirements.in): not pinned for Windows ARM64 Python 3.14" in problems
    assert not any("x86_64" in p for p in problems)
