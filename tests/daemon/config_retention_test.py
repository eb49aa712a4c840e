"""The `retention:` section: its values as a RetentionPolicy, and each bad value at its line with what to write."""

from __future__ import annotations

import pytest
from daemon.config_test import REPO, config_file, one_error

from fasttrack_gitops.core.retention import RetentionPolicy
from fasttrack_gitops.daemon.config_loading import load_config


def test_retention_becomes_a_policy(tmp_path):
    text = REPO + "retention:\n  max_age: 30d\n  keep_per_pipeline: 50\n  interval: 6h\n"
    config, found = load_config(config_file(tmp_path, text), {})
    assert found == []
    assert config.retention == RetentionPolicy(max_age=30 * 86400.0, keep_per_pipeline=50, interval=6 * 3600.0)


def test_without_retention_nothing_is_collected_and_the_interval_is_a_day(tmp_path):
    config, found = load_config(config_file(tmp_path, REPO), {})
    assert found == [] and not config.retention.limited and config.retention.interval == 86400.0


@pytest.mark.parametrize(
    "section, where, code, problem",
    [
        ("  keep_per_pipeline: -1\n", "5:22", "FT100", "retention.keep_per_pipeline is -1; it must be at least 0"),
        ("  max_age: 30w\n", "5:12", "FT409", "retention.max_age is '30w'; write seconds, or a duration"),
        ("  max_age: 2y\n", "5:12", "FT409", "retention.max_age is '2y'"),
        ("  interval: 10s\n", "5:13", "FT409", "retention.interval is '10s'; it must be at least 60s"),
        ("  keep: 5\n", "5:3", "FT", "keep"),
    ],
    ids=["negative count", "unknown unit", "years", "interval too short", "unknown key"],
)
def test_a_bad_retention_value_is_named_at_its_line(tmp_path, section, where, code, problem):
    line = one_error(tmp_path, REPO + "retention:\n" + section)
    assert f":{where}: error {code}" in line and problem in line, line
