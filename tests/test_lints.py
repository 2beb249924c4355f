"""Every lint, as part of the test suite: ruff, mypy --strict, hadolint, zizmor, the schemas.

zizmor reads the workflows, action.yml and dependabot.yml (it wants a cooldown on every update)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

LINTS = {
    "ruff check": [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "publisher",
        "tests",
        "bench",
        "docker",
        "action",
    ],
    "ruff format": [
        sys.executable,
        "-m",
        "ruff",
        "format",
        "--check",
        "publisher",
        "tests",
        "bench",
        "docker",
        "action",
    ],
    "mypy --strict": [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "publisher",
        "tests",
        "bench",
        "docker",
        "action",
    ],
    "hadolint": ["hadolint", "Dockerfile"],
    "zizmor": [
        "zizmor",
        "--offline",
        "--config",
        ".github/zizmor.yml",
        "action.yml",
        ".github/workflows/",
        ".github/dependabot.yml",
    ],
    "action schema": [
        "check-jsonschema",
        "--builtin-schema",
        "vendor.github-actions",
        "action.yml",
    ],
    "workflow schema": [
        "check-jsonschema",
        "--builtin-schema",
        "vendor.github-workflows",
        ".github/workflows/ci.yml",
        ".github/workflows/self-test.yml",
    ],
    "dependabot schema": [
        "check-jsonschema",
        "--builtin-schema",
        "vendor.dependabot",
        ".github/dependabot.yml",
    ],
}


@pytest.mark.parametrize("name", LINTS)
def test_lint_is_clean(name: str) -> None:
    completed = subprocess.run(
        LINTS[name], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
