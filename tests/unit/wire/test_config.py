"""Unit tests for shoal._private.wire.config: defaults, SHOAL_<NAME> overrides and coercion."""

from __future__ import annotations

import pytest

from shoal._private.wire.config import SETTINGS, Config, Setting, config


@pytest.fixture(autouse=True)
def _no_shoal_env(monkeypatch):
    """Run every test without inherited SHOAL_* overrides (monkeypatch restores them)."""
    for s in SETTINGS:
        monkeypatch.delenv(s.env, raising=False)


def test_env_name_is_shoal_prefix_plus_upper_name():
    assert Setting("max_inline_bytes", 1, "").env == "SHOAL_MAX_INLINE_BYTES"
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))


def test_every_setting_reads_its_default_without_env():
    for s in SETTINGS:
        assert getattr(config, s.name) == s.default
        assert type(getattr(config, s.name)) is type(s.default)


def test_int_override_is_coerced_to_int(monkeypatch):
    monkeypatch.setenv("SHOAL_MAX_INLINE_BYTES", "2048")
    assert config.max_inline_bytes == 2048
    assert type(config.max_inline_bytes) is int
    monkeypatch.setenv("SHOAL_PRESTART_WORKERS", "-1")
    assert config.prestart_workers == -1


def test_float_override_is_coerced_to_float(monkeypatch):
    monkeypatch.setenv("SHOAL_START_TIMEOUT_S", "2.5")
    assert config.start_timeout_s == 2.5
    monkeypatch.setenv("SHOAL_START_TIMEOUT_S", "3")
    assert config.start_timeout_s == 3.0
    assert type(config.start_timeout_s) is float


def test_str_override_is_used_verbatim(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOAL_SHM_DIR", str(tmp_path))
    assert config.shm_dir == str(tmp_path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("TRUE", True), (" yes ", True), ("on", True),
     ("0", False), ("false", False), ("no", False), ("off", False), ("", False)],
)
def test_bool_override_is_parsed_not_taken_as_truthy_string(monkeypatch, raw, expected):
    monkeypatch.setenv("SHOAL_LOG_TO_DRIVER", raw)
    assert config.log_to_driver is expected


def test_override_is_read_at_access_time(monkeypatch):
    assert config.default_max_retries == 3
    monkeypatch.setenv("SHOAL_DEFAULT_MAX_RETRIES", "7")
    assert config.default_max_retries == 7
    assert Config().default_max_retries == 7
    monkeypatch.delenv("SHOAL_DEFAULT_MAX_RETRIES")
    assert config.default_max_retries == 3


def test_malformed_number_raises_instead_of_silently_using_default(monkeypatch):
    monkeypatch.setenv("SHOAL_MAX_INLINE_BYTES", "lots")
    with pytest.raises(ValueError):
        _ = config.max_inline_bytes


def test_unknown_setting_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_setting"):
        _ = config.no_such_setting
    assert not hasattr(config, "no_such_setting")
    assert getattr(config, "also_missing", "fallback") == "fallback"
