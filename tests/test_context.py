"""The run context: forks recognised from the event payload, and the dry-run decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from publisher.context import decide_dry_run, load_context
from publisher.settings import load_settings


def context_for(tmp_path: Path, event_name: str, event: dict[str, object], **env: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return load_context(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REPOSITORY": "octo-org/example-pkg",
            **env,
        }
    )


def pull_request(head: str) -> dict[str, object]:
    return {
        "pull_request": {
            "head": {"repo": {"full_name": head}},
            "base": {"repo": {"full_name": "octo-org/example-pkg"}},
        }
    }


@pytest.mark.parametrize("event_name", ["pull_request", "pull_request_target"])
def test_pull_request_from_a_fork_is_a_fork(tmp_path: Path, event_name: str) -> None:
    context = context_for(tmp_path, event_name, pull_request("someone/example-pkg"))
    assert "`someone/example-pkg`" in context.fork_reason


def test_pull_request_from_a_branch_is_not(tmp_path: Path) -> None:
    assert (
        context_for(tmp_path, "pull_request", pull_request("octo-org/example-pkg")).fork_reason
        == ""
    )


def test_forked_repository_is_a_fork_and_missing_payload_is_not(tmp_path: Path) -> None:
    forked = context_for(tmp_path, "push", {"repository": {"full_name": "me/pkg", "fork": True}})
    assert forked.fork_reason == "The repository `me/pkg` is a fork."
    assert load_context({"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")}).fork_reason == ""


def test_oidc_is_available_only_with_both_variables(tmp_path: Path) -> None:
    both = {"ACTIONS_ID_TOKEN_REQUEST_URL": "u", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    assert context_for(tmp_path, "push", {}, **both).oidc_available
    assert not context_for(tmp_path, "push", {}, ACTIONS_ID_TOKEN_REQUEST_URL="u").oidc_available


@pytest.mark.parametrize(
    ("setting", "fork", "enabled"),
    [("auto", True, True), ("auto", False, False), ("true", False, True), ("false", True, False)],
)
def test_dry_run_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, fork: bool, enabled: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dist").mkdir()
    head = "someone/example-pkg" if fork else "octo-org/example-pkg"
    context = context_for(tmp_path, "pull_request", pull_request(head))
    decision = decide_dry_run(load_settings({"INPUT_DRY-RUN": setting}), context)
    assert decision.enabled is enabled
    if enabled and setting == "auto":
        assert "`dry-run: false`" in decision.reason
