"""Settings load in the documented order, refuse unknown keys and bad values by name, and document themselves."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from updown import settings
from updown.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_settings_no_config_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = settings.load(environ={})
    assert s.data_dir == tmp_path / "data"
    assert s.config_path is None
    assert s.server.port == 8000
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'updown.db'}"
    assert s.storage.backend == "local"
    assert s.s3.region == "us-east-1"
    assert s.public_url == "http://127.0.0.1:8000"


def test_settings_toml_then_env_then_overrides_order(tmp_path: Path) -> None:
    cfg = tmp_path / "u.toml"
    cfg.write_text('[server]\nport = 9000\nworkers = 3\nhost = "0.0.0.0"\n[s3]\nregion = "eu-west-1"\n')
    env = {"UPDOWN_SERVER__WORKERS": "4", "UPDOWN_S3__PATH_STYLE": "false"}
    s = settings.load(data_dir=tmp_path / "d", config=cfg, environ=env, overrides={"server": {"host": "127.0.0.2"}})
    assert (s.server.port, s.server.workers, s.server.host) == (9000, 4, "127.0.0.2")
    assert s.s3.region == "eu-west-1"
    assert s.s3.path_style is False
    assert s.config_path == cfg


def test_settings_data_dir_and_config_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 8123\n")
    s = settings.load(environ={"UPDOWN_DATA_DIR": str(tmp_path / "dd"), "UPDOWN_CONFIG": str(cfg)})
    assert s.data_dir == tmp_path / "dd"
    assert s.server.port == 8123


def test_settings_default_config_file_in_cwd_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "updown.toml").write_text("[storage]\nbucket = 'photos'\n")
    assert settings.load(environ={}).storage.bucket == "photos"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[server]\nprot = 1\n", {}, "unknown setting server.prot"),
        ("[sever]\nport = 1\n", {}, r"unknown section \[sever\]"),
        ("", {"UPDOWN_SERVER__PROT": "1"}, "unknown setting in environment: UPDOWN_SERVER__PROT"),
        ("[server]\nport = 'abc'\n", {}, "bad value for server.port"),
        ("", {"UPDOWN_SERVER__PORT": "abc"}, r"bad value for server.port \(UPDOWN_SERVER__PORT\)"),
        ("", {"UPDOWN_SERVER__PORT": "70000"}, "is not a TCP port"),
        ("", {"UPDOWN_S3__PATH_STYLE": "maybe"}, "expected true or false"),
        ("[storage]\nbackend = 'ftp'\n", {}, "expected one of local, s3"),
        ("[storage]\nbackend = 's3'\n", {}, "needs s3.access_key_id"),
        ("[server]\nworkers = 0\n", {}, "server.workers"),
        ("[server]\nport = true\n", {}, "expected an integer"),
        ("[server]\nport = -1\n", {}, "non-negative"),
        ("[server]\nhost = 1\n", {}, "expected a string"),
        ("server = 1\n", {}, "must be a table"),
        ("[server\n", {}, "not valid TOML"),
        ("[storage]\npresign_expires = 0\n", {}, "presign_expires"),
    ],
)
def test_settings_bad_input_refused_by_name(tmp_path: Path, toml: str, env: dict[str, str], message: str) -> None:
    cfg = tmp_path / "u.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        settings.load(data_dir=tmp_path, config=cfg, environ=env)
    assert "\n" not in info.value.detail


def test_settings_secret_bad_value_not_echoed(tmp_path: Path) -> None:
    cfg = tmp_path / "u.toml"
    cfg.write_text("[s3]\nsecret_access_key = 12345\n")
    with pytest.raises(ConfigError) as info:
        settings.load(data_dir=tmp_path, config=cfg, environ={})
    assert "12345" not in info.value.detail


def test_settings_missing_config_file_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        settings.load(data_dir=tmp_path, config=tmp_path / "nope.toml", environ={})


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = settings.load(data_dir=tmp_path, environ={})
    with pytest.raises(AttributeError):
        s.server.port = 1  # type: ignore[misc]


def test_settings_template_parses_and_round_trips(tmp_path: Path) -> None:
    text = settings.template({("s3", "access_key_id"): "AKIDEXAMPLE", ("s3", "secret_access_key"): "sekrit"})
    doc = tomllib.loads(text)
    assert doc["s3"] == {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "sekrit"}
    # Uncommenting every default line gives a file the loader accepts with the same values.
    uncommented = "\n".join(line[2:] if line.startswith("# ") and " = " in line else line for line in text.splitlines())
    cfg = tmp_path / "all.toml"
    cfg.write_text(uncommented)
    s = settings.load(data_dir=tmp_path, config=cfg, environ={})
    assert s.server.port == 8000
    assert s.storage.max_object_size == 5 * 1024**3
    for info in settings.describe():
        assert f"# {info.doc}" in text


def test_settings_docs_configuration_md_is_current() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == settings.markdown(), "regenerate with: python -m updown.settings > docs/configuration.md"


def test_settings_every_setting_documented_with_env_name() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for info in settings.describe():
        assert info.env in doc
