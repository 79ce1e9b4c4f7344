"""`srgan serve` settings: defaults, config files, flags, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from srgan.errors import BadInputError
from srgan.serve.settings import ServeSettings, is_loopback, load_settings


def test_keys_are_required_unless_the_host_is_loopback():
    assert not ServeSettings().keys_required
    assert not ServeSettings(host="::1").keys_required
    assert not ServeSettings(host="localhost").keys_required
    assert ServeSettings(host="0.0.0.0").keys_required
    assert ServeSettings(host="192.168.1.5").keys_required
    assert not ServeSettings(host="0.0.0.0", require_keys=False).keys_required
    assert ServeSettings(require_keys=True).keys_required
    assert is_loopback("127.0.0.2") and not is_loopback("example.org")


def test_a_config_file_then_flags(tmp_path: Path):
    config = tmp_path / "serve.toml"
    config.write_text(
        'host = "0.0.0.0"\nworkers = 3\ncors_origins = ["https://a.example"]\n'
        "[rate_limit]\nper_second = 2.5\nburst = 4\n"
    )
    settings = load_settings(config, workers=None, port=9000)
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9000, 3)
    assert settings.cors_origins == ("https://a.example",)
    assert (settings.rate_limit.per_second, settings.rate_limit.burst) == (2.5, 4)
    assert settings.database_path == Path("srgan-data") / "srgan.sqlite3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wrokers = 2\n", "wrokers: Extra inputs are not permitted"),
        ("workers = 0\n", "workers: Input should be greater than or equal to 1"),
        ('models = ["nope"]\n', "unknown ['nope']"),
        ('default_model = "anime"\nmodels = ["bicubic"]\n', "default_model 'anime' is not in"),
        ("[rate_limit]\nburst = 0\n", "rate_limit.burst"),
        ('[model_files]\nnatural = "serve.toml"\n', "'natural' must be a new name"),
        ('[model_files]\n"../x" = "serve.toml"\n', "'../x' must be a new name"),
        ('[model_files]\nmine = "/no/such.onnx"\n', "is not a file"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path: Path, text: str, message: str):
    config = tmp_path / "serve.toml"
    config.write_text(text)
    with pytest.raises(BadInputError, match=r"serve\.toml: ") as error:
        load_settings(config)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_cli_reports_a_bad_config_and_exits_2(cli, tmp_path: Path):
    config = tmp_path / "serve.yaml"
    config.write_text("port: -1\n")
    result = cli("serve", "--config", config, check=False)
    assert result.returncode == 2
    assert "port: Input should be greater than or equal to 0" in result.stderr
    missing = cli("serve", "keys", "revoke", "nobody", "--data-dir", tmp_path, check=False)
    assert missing.returncode == 2 and "no key with id or name 'nobody'" in missing.stderr
