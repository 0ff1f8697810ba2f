"""The ``cache:`` section: the disk cache's place, size and how long it serves stale listings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pikdav.config import ConfigError, parse_config
from tests.test_config import minimal


def test_the_disk_cache_is_on_by_default_under_state_dir_with_2_gib_and_7_days():
    config = parse_config(minimal(state_dir="/var/lib/pikdav"), "c.yaml")
    assert config.cache_dir == Path("/var/lib/pikdav/cache")
    assert config.cache.disk_size == 2 << 30
    assert config.cache.serve_stale_for == 7 * 86400


def test_cache_keys_take_sizes_durations_and_an_off():
    config = parse_config(
        minimal(cache={"dir": "/srv/cache", "disk_size": "500M", "serve_stale_for": "12h"}),
        "c.yaml",
    )
    assert config.cache_dir == Path("/srv/cache")
    assert config.cache.disk_size == 500 << 20
    assert config.cache.serve_stale_for == 12 * 3600
    assert parse_config(minimal(cache={"disk_size": 0}), "c.yaml").cache.disk_size == 0


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        ({"disk_size": "lots"}, "cache.disk_size: must be a size in bytes"),
        ({"serve_stale_for": "a week"}, "cache.serve_stale_for: must be seconds, or like"),
        ({"size": "2G"}, "cache"),
    ],
)
def test_a_wrong_cache_key_is_a_clear_error(cache, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(minimal(cache=cache), "c.yaml")
    assert message in str(caught.value)
