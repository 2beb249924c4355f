"""The image's lock cannot drift from pyproject.toml.

`docker/requirements.txt` is what the image installs (`--no-deps --require-hashes`), compiled from
`docker/requirements.in` by the README's command ("Updating the lock") with the overrides in
`docker/pyproject.toml`. These checks read those files and the metadata of the installed
distributions: they never resolve anything and never touch the network.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

DOCKER = Path(__file__).resolve().parents[1] / "docker"

# The image's interpreter, python:3.13-slim, on the two machines GitHub's runners have.
ENVIRONMENTS = tuple(
    {
        "implementation_name": "cpython",
        "implementation_version": "3.13.0",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": "3.13.0",
        "python_version": "3.13",
        "sys_platform": "linux",
    }
    for machine in ("x86_64", "aarch64")
)

Metadata = tuple[str, list[str]]  # a distribution's version and its Requires-Dist
MetadataLookup = Callable[[str], Metadata | None]


def installed_metadata(name: str) -> Metadata | None:
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return dist.version, dist.requires or []


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, environment: Mapping[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(dict(environment))


def lock_problems(
    pyproject_text: str,
    requirements_in_text: str,
    lock_text: str,
    metadata_lookup: MetadataLookup,
    overrides: Sequence[str] = (),
) -> list[str]:
    """Every way the lock disagrees with pyproject.toml, as sentences; empty when they agree.

    `overrides` are uv's override-dependencies: each replaces every requirement on its project.
    """
    problems: dict[str, None] = {}  # ordered, without the repeats the two machines would give
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
    replaced = _requirements(overrides)
    reached: set[NormalizedName] = set()
    for environment in ENVIRONMENTS:
        reached |= _check_closure(
            wanted.values(), pins, replaced, metadata_lookup, environment, problems
        )
    for name, candidates in pins.items():
        if name not in reached and any(p.applies(env) for p in candidates for env in ENVIRONMENTS):
            problems[
                f"{name}: pinned in the lock, but nothing in docker/requirements.in needs it "
                "(was the lock compiled without the overrides in docker/pyproject.toml?)"
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


def _parse_lock(lock_text: str, problems: dict[str, None]) -> dict[NormalizedName, list[Pin]]:
    pins: dict[NormalizedName, list[Pin]] = {}
    for line in re.sub(r"\\\n", " ", lock_text).splitlines():
        hashes = tuple(re.findall(r"--hash[=\s]sha256:([0-9a-f]{64})\b", line))
        text = re.sub(r"--hash[=\s]\S+", "", line).split(" #", 1)[0].strip()
        if not text or text.startswith(("#", "-")):
            continue
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
        pins.setdefault(name, []).append(Pin(name, version, requirement.marker, hashes))
    return pins


def _check_closure(
    roots: Iterable[Requirement],
    pins: Mapping[NormalizedName, list[Pin]],
    overrides: Mapping[NormalizedName, Requirement],
    metadata_lookup: MetadataLookup,
    environment: Mapping[str, str],
    problems: dict[str, None],
) -> set[NormalizedName]:
    """Follow the requirements and their dependencies; return the names reached."""
    machine = environment["platform_machine"]
    queue = [(r, "docker/requirements.in") for r in roots]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    reached: set[NormalizedName] = set()
    while queue:
        requirement, needed_by = queue.pop(0)
        name = canonicalize_name(requirement.name)
        requirement = overrides.get(name, requirement)
        if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
            continue
        reached.add(name)
        candidates = [p for p in pins.get(name, []) if p.applies(environment)]
        if len(candidates) != 1:
            how = "not pinned" if not candidates else "pinned more than once"
            problems[f"{name} (needed by {needed_by}): {how} in the lock for {machine}"] = None
            continue
        pin = candidates[0]
        if not requirement.specifier.contains(pin.version, prereleases=True):
            problems[
                f"{name}=={pin.version} in the lock does not satisfy `{requirement}` "
                f"(needed by {needed_by})"
            ] = None
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        metadata = metadata_lookup(name)
        if metadata is None:
            problems[
                f"{name}: not installed here, so its own dependencies cannot be read "
                "(python -m pip install -e '.[test]')"
            ] = None
            continue
        version, requires = metadata
        source = name if Version(version) == pin.version else f"{name} {version} (installed)"
        extras = {"", *requirement.extras}
        for text in requires:
            dependency = Requirement(text)
            if dependency.marker is None or any(
                dependency.marker.evaluate({**environment, "extra": extra}) for extra in extras
            ):
                dependency.marker = None
                queue.append((dependency, source))
    return reached


# --- the real files ---------------------------------------------------------------------------


def dockerfile() -> str:
    return (DOCKER.parent / "Dockerfile").read_text()


def test_the_lock_agrees_with_pyproject() -> None:
    uv = tomllib.loads((DOCKER / "pyproject.toml").read_text())["tool"]["uv"]
    problems = lock_problems(
        (DOCKER.parent / "pyproject.toml").read_text(),
        (DOCKER / "requirements.in").read_text(),
        (DOCKER / "requirements.txt").read_text(),
        installed_metadata,
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


def test_the_lock_is_compiled_for_the_image_python_on_every_platform() -> None:
    # Dependabot recompiles with the options it finds in the lock: keep them in its header.
    header = (DOCKER / "requirements.txt").read_text().split("\n", 2)[1]
    image = re.search(r"^FROM python:(\d+\.\d+)-slim@sha256:[0-9a-f]{64} ", dockerfile(), re.M)

    assert image, "the Dockerfile's FROM line names python:X.Y-slim by digest"
    assert f"--python-version {image[1]} " in header
    assert "--universal " in header
    assert "--generate-hashes " in header


# --- the check itself, on small made-up files -------------------------------------------------

PYPROJECT = """
[project]
name = "demo"
dependencies = ["alpha>=1", "beta>=2"]
"""
REQUIREMENTS_IN = "# the runtime dependencies\nalpha>=1\nbeta>=2\n"
METADATA: dict[str, Metadata] = {
    "alpha": (
        "1.5",
        ["gamma>=3", "old-backport; python_version < '3.12'", "extra-thing; extra == 'x'"],
    ),
    "beta": ("2.0", ["keyring", "winreg-helper; sys_platform == 'win32'"]),
    "gamma": ("3.1", []),
    "keyring": ("25.0", []),
}
OVERRIDES = ["keyring; python_version < '0'"]
HASH = "--hash=sha256:" + "ab" * 32
LOCK = f"""# This file was autogenerated by uv via the following command:
#    uv pip compile requirements.in --universal --generate-hashes -o requirements.txt
alpha==1.5 \\
    {HASH}
    # via -r requirements.in
beta==2.0 \\
    {HASH}
gamma==3.1 \\
    {HASH} \\
    --hash=sha256:{"cd" * 32}
    # via alpha
"""


def problems_with(
    pyproject: str = PYPROJECT,
    requirements_in: str = REQUIREMENTS_IN,
    lock: str = LOCK,
    metadata: Mapping[str, Metadata] = METADATA,
    overrides: Sequence[str] = tuple(OVERRIDES),
) -> list[str]:
    return lock_problems(pyproject, requirements_in, lock, metadata.get, overrides)


def test_files_that_agree_have_no_problems() -> None:
    # old-backport (Python < 3.12), winreg-helper (Windows), extra-thing (an extra no one asks
    # for) and keyring (overridden away) are not needed in the image and not in the lock
    assert problems_with() == []


def test_a_drifted_specifier_is_reported() -> None:
    problems = problems_with(requirements_in="alpha>=1.6\nbeta>=2\n")

    assert "alpha: pyproject.toml asks for `alpha>=1`, docker/requirements.in for `alpha>=1.6`" in (
        problems
    )
    assert any(
        p.startswith("alpha==1.5 in the lock does not satisfy `alpha>=1.6`") for p in problems
    )


def test_a_dependency_missing_on_either_side_is_reported() -> None:
    assert problems_with(requirements_in="alpha>=1\n") == [
        "beta: in pyproject.toml but not in docker/requirements.in",
        "beta: pinned in the lock, but nothing in docker/requirements.in needs it "
        "(was the lock compiled without the overrides in docker/pyproject.toml?)",
    ]
    assert problems_with(requirements_in=REQUIREMENTS_IN + "delta>=1\n")[0] == (
        "delta: in docker/requirements.in but not in pyproject.toml"
    )


def test_a_missing_pin_is_reported_with_who_needs_it() -> None:
    lock = LOCK.split("gamma==")[0]

    assert problems_with(lock=lock) == [
        "gamma (needed by alpha): not pinned in the lock for x86_64",
        "gamma (needed by alpha): not pinned in the lock for aarch64",
    ]


def test_a_pin_without_hashes_is_reported() -> None:
    lock = LOCK.replace(f"beta==2.0 \\\n    {HASH}\n", "beta==2.0\n")

    assert problems_with(lock=lock) == ["beta==2.0: no `--hash=sha256:` in the lock"]


def test_a_pin_that_violates_a_dependency_specifier_is_reported() -> None:
    lock = LOCK.replace("gamma==3.1", "gamma==2.9")

    assert problems_with(lock=lock) == [
        "gamma==2.9 in the lock does not satisfy `gamma>=3` (needed by alpha)"
    ]


def test_a_range_in_the_lock_is_not_a_pin() -> None:
    lock = LOCK.replace("gamma==3.1", "gamma>=3.1")

    assert problems_with(lock=lock)[0] == "gamma: `gamma>=3.1` in the lock is not pinned with `==`"


def test_a_dependency_read_from_another_installed_version_says_so() -> None:
    metadata = {**METADATA, "alpha": ("1.4", ["gamma>=4"])}

    assert problems_with(metadata=metadata) == [
        "gamma==3.1 in the lock does not satisfy `gamma>=4` (needed by alpha 1.4 (installed))"
    ]


def test_the_overrides_drop_what_the_image_does_not_need() -> None:
    assert problems_with(overrides=()) == [
        "keyring (needed by beta): not pinned in the lock for x86_64",
        "keyring (needed by beta): not pinned in the lock for aarch64",
    ]
    with_keyring = LOCK + f"keyring==25.0 \\\n    {HASH}\n"
    assert problems_with(lock=with_keyring) == [
        "keyring: pinned in the lock, but nothing in docker/requirements.in needs it "
        "(was the lock compiled without the overrides in docker/pyproject.toml?)"
    ]


def test_markers_are_evaluated_for_both_machines() -> None:
    metadata = {**METADATA, "gamma": ("3.1", ["arm-helper; platform_machine == 'aarch64'"])}

    assert problems_with(metadata=metadata) == [
        "arm-helper (needed by gamma): not pinned in the lock for aarch64"
    ]


def test_requested_extras_bring_their_dependencies() -> None:
    metadata = {**METADATA, "beta": ("2.0", ["alpha[x]"])}

    assert problems_with(metadata=metadata) == [
        "extra-thing (needed by alpha): not pinned in the lock for x86_64",
        "extra-thing (needed by alpha): not pinned in the lock for aarch64",
    ]


def test_a_dependency_that_is_not_installed_cannot_be_followed() -> None:
    metadata = {k: v for k, v in METADATA.items() if k != "gamma"}

    assert problems_with(metadata=metadata) == [
        "gamma: not installed here, so its own dependencies cannot be read "
        "(python -m pip install -e '.[test]')"
    ]
