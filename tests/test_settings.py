"""Settings: the anchor action's inputs, aliases and defaults; each error names its input."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.settings import PYPI_UPLOAD_URL, load_settings


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dist").mkdir()
    return tmp_path / "dist"


def test_defaults_are_the_anchor_actions(dist: Path) -> None:
    settings = load_settings({})

    assert settings.user == "__token__"
    assert settings.password == ""
    assert settings.trusted_publishing
    assert settings.repository_url == PYPI_UPLOAD_URL
    assert settings.packages_dir == Path("dist")
    assert settings.verify_metadata is True
    assert settings.skip_existing is False
    assert settings.print_hash is False
    assert settings.dry_run == "auto"
    assert settings.warnings == ()


def test_hyphenated_inputs_are_read_as_the_runner_passes_them(dist: Path) -> None:
    settings = load_settings(
        {
            "INPUT_REPOSITORY-URL": "https://test.pypi.org/legacy/",
            "INPUT_SKIP-EXISTING": "TRUE",
            "INPUT_VERIFY-METADATA": "False",
            "INPUT_DRY-RUN": "True",
        }
    )

    assert settings.repository_url == "https://test.pypi.org/legacy/"
    assert settings.skip_existing is True
    assert settings.verify_metadata is False
    assert settings.dry_run == "true"


def test_deprecated_alias_is_used_with_a_warning(dist: Path) -> None:
    settings = load_settings({"INPUT_REPOSITORY_URL": "https://test.pypi.org/legacy/"})

    assert settings.repository_url == "https://test.pypi.org/legacy/"
    assert settings.warnings == (
        "Input `repository_url` is deprecated; rename it to `repository-url`.",
    )


def test_new_name_wins_over_a_conflicting_alias(dist: Path) -> None:
    settings = load_settings(
        {
            "INPUT_PACKAGES-DIR": "dist",
            "INPUT_PACKAGES_DIR": "elsewhere",
        }
    )

    assert settings.packages_dir == Path("dist")
    assert "Remove `packages_dir`" in settings.warnings[0]


def test_flags_override_inputs(dist: Path) -> None:
    settings = load_settings(
        {"INPUT_REPOSITORY-URL": "https://test.pypi.org/legacy/"},
        ["--dry-run", "--repository-url", "http://127.0.0.1:8080/", "--skip-existing"],
    )

    assert settings.dry_run == "true"
    assert settings.repository_url == "http://127.0.0.1:8080/"
    assert settings.skip_existing is True


def test_password_means_no_trusted_publishing_and_keeps_its_value(dist: Path) -> None:
    settings = load_settings({"INPUT_PASSWORD": "pypi-abc "})

    assert not settings.trusted_publishing
    assert settings.password == "pypi-abc "


@pytest.mark.parametrize(
    ("variable", "value", "name"),
    [
        ("INPUT_SKIP-EXISTING", "yes", "skip-existing"),
        ("INPUT_VERIFY_METADATA", "1", "verify-metadata"),
        ("INPUT_PRINT-HASH", "on", "print-hash"),
        ("INPUT_VERBOSE", "maybe", "verbose"),
        ("INPUT_ATTESTATIONS", "y", "attestations"),
        ("INPUT_DRY-RUN", "sometimes", "dry-run"),
        ("INPUT_REPOSITORY-URL", "upload.pypi.org/legacy/", "repository-url"),
        ("INPUT_REPOSITORY-URL", "ftp://example.org/", "repository-url"),
        ("INPUT_REPOSITORY-URL", "https:///legacy/", "repository-url"),
        ("INPUT_REPOSITORY-URL", "http://pypi.example.com/", "repository-url"),
        ("INPUT_PACKAGES-DIR", "nowhere", "packages-dir"),
        ("INPUT_USER", "alice", "user"),
    ],
)
def test_bad_input_names_the_input_and_its_value(
    dist: Path, variable: str, value: str, name: str
) -> None:
    with pytest.raises(InputError) as raised:
        load_settings({variable: value})

    assert raised.value.name == name
    assert f"Input `{name}` got `{value}`" in raised.value.markdown
    assert name in raised.value.title


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://localhost/", "http://[::1]:9/"])
def test_plain_http_is_accepted_for_loopback_only(dist: Path, url: str) -> None:
    assert load_settings({"INPUT_REPOSITORY-URL": url}).repository_url == url


def test_packages_dir_that_is_a_file_is_refused(dist: Path) -> None:
    (dist / "f").write_text("")
    with pytest.raises(InputError, match="is not a directory"):
        load_settings({"INPUT_PACKAGES-DIR": "dist/f"})


@pytest.mark.parametrize("value", ["0", "17", "four", "-1", "2.5"])
def test_upload_concurrency_is_a_small_whole_number(dist: Path, value: str) -> None:
    with pytest.raises(InputError, match="Input `upload-concurrency` got"):
        load_settings({"INPUT_UPLOAD-CONCURRENCY": value})


def test_upload_concurrency_defaults_to_four_and_takes_one(dist: Path) -> None:
    assert load_settings({}).upload_concurrency == 4
    assert load_settings({"INPUT_UPLOAD-CONCURRENCY": "1"}).upload_concurrency == 1
    assert load_settings({}, ["--upload-concurrency", "8"]).upload_concurrency == 8
