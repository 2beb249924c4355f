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


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/", "http://127.0.0.2/", "http://localhost/", "http://[::1]:9/"]
)
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


# URLs that urllib.parse (which the checks used) and urllib3 (which requests connects with) read
# differently, with what each must not show: what could be a user name or password.
HOSTILE_URLS = [
    ("http://evil.example\\@127.0.0.1/", "evil.example"),  # loopback to one, evil to the other
    ("http://127.0.0.1\\@evil.example/", "127.0.0.1\\"),
    ("http://127.0.0.1:80@evil.example/", "127.0.0.1:80"),
    ("http://[::1]@evil.example/", "[::1]"),
    ("http://localhost%2F@evil.example/", "localhost%2F"),
    ("http://127.0.0.1\t@evil.example/", "127.0.0.1"),  # urllib.parse drops tabs, urllib3 not
    ("http://127.0.0.1\n@evil.example/", "127.0.0.1"),
    ("http://alice:hunter2@127.0.0.1:8080/", "hunter2"),
    ("https://__token__:hunter2@upload.example.com/legacy/", "hunter2"),
]


@pytest.mark.parametrize(("url", "hidden"), HOSTILE_URLS)
@pytest.mark.parametrize("name", ["repository-url", "index-url"])
def test_a_url_the_parsers_could_read_differently_is_refused_and_masked(
    dist: Path, url: str, hidden: str, name: str
) -> None:
    with pytest.raises(InputError) as raised:
        load_settings({f"INPUT_{name.upper()}": url})

    assert raised.value.name == name
    assert f"Input `{name}` got `http" in raised.value.markdown
    assert "***@" in raised.value.markdown
    assert hidden not in raised.value.markdown


def test_credentials_in_the_url_point_to_the_inputs(dist: Path) -> None:
    with pytest.raises(InputError) as raised:
        load_settings({"INPUT_REPOSITORY-URL": "https://alice:hunter2@upload.example.com/"})

    assert raised.value.markdown == (
        "Input `repository-url` got `https://***@upload.example.com/`: it holds a user name or "
        "password (`user:password@host`). Give them in the `user` and `password` inputs (the "
        "password from a secret), and the URL without them."
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com:0/legacy/", "requests would not connect to the scheme, host and"),
        ("https://b\u00fccher.example/", "write an internationalized name in its `xn--` form"),
        ("https://\uff45xample.com/", "write an internationalized name in its `xn--` form"),
        ("https://example.com\u200b/legacy/", "a backslash, a space or a control character"),
    ],
)
def test_a_url_is_taken_only_as_requests_will_use_it(dist: Path, url: str, expected: str) -> None:
    with pytest.raises(InputError, match="Input `repository-url` got") as raised:
        load_settings({"INPUT_REPOSITORY-URL": url})

    assert expected in raised.value.markdown


def test_a_control_character_is_shown_escaped(dist: Path) -> None:
    with pytest.raises(InputError) as raised:
        load_settings({"INPUT_REPOSITORY-URL": "https://example.com/le\x1bgacy/"})

    assert "got `https://example.com/le\\x1bgacy/`" in raised.value.markdown


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "\uff14", "9" * 5000])
def test_upload_concurrency_takes_ascii_digits_only(dist: Path, value: str) -> None:
    """Superscript two passes `str.isdigit` and fails `int()`; Arabic-Indic three and fullwidth
    four pass both."""
    with pytest.raises(InputError, match="Input `upload-concurrency` got"):
        load_settings({"INPUT_UPLOAD-CONCURRENCY": value})


@pytest.mark.parametrize("value", ["\u0663\u0660\u0660", "1_0", "1e2", "+5", "-0"])
def test_await_timeout_takes_ascii_decimals_only(dist: Path, value: str) -> None:
    """All numbers to `float()`, none to a reader of the workflow."""
    with pytest.raises(InputError, match="Input `await-timeout` got"):
        load_settings({"INPUT_AWAIT-TIMEOUT": value})


@pytest.mark.parametrize(
    ("value", "seconds"), [("0", 0.0), ("2.5", 2.5), (".5", 0.5), ("3600", 3600)]
)
def test_await_timeout_takes_seconds_with_a_fraction(
    dist: Path, value: str, seconds: float
) -> None:
    assert load_settings({"INPUT_AWAIT-TIMEOUT": value}).await_timeout == seconds


@pytest.mark.parametrize(
    ("value", "delay"),
    [("0.05", 0.05), ("nan", 2.0), ("inf", 2.0), ("\u0663", 2.0), ("1e9", 2.0), ("-1", 2.0)],
)
def test_a_bad_retry_delay_is_the_default_not_a_crash(dist: Path, value: str, delay: float) -> None:
    assert load_settings({"PUBLISHER_RETRY_DELAY": value}).retry_delay == delay


def test_a_trust_config_nested_past_the_stack_is_named(dist: Path) -> None:
    (dist.parent / "trust.json").write_text("[" * 100_000)

    with pytest.raises(InputError, match="maximum recursion depth") as raised:
        load_settings({"INPUT_SIGSTORE-TRUST-CONFIG": "trust.json"})

    assert raised.value.name == "sigstore-trust-config"
