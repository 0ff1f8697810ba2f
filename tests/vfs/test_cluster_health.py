"""The shared state's own health, as the status page shows it: down when Redis stops answering,
up again by itself when it is back, and never a password in what it shows."""

from __future__ import annotations

import time

import pytest

from pikdav.pikpak.http import shown_url
from pikdav.vfs.cluster import Cluster, ClusterDown
from tests.support.redis_server import redis_process
from tests.support.waits import wait_until


def test_redis_going_away_and_coming_back_is_seen_and_shown(tmp_path):
    with redis_process(tmp_path, persistent=True) as redis:
        cluster = Cluster(redis.url)
        heard: list[str] = []
        cluster.on_notice("changes:pikpak", lambda message: heard.append("notice"))
        # Forgetting takes a while (as when many listings are held): "up" must wait for it.
        cluster.on_return(lambda: (time.sleep(0.2), heard.append("back")))
        cluster.start()
        try:
            assert cluster.status().up and cluster.status().problem == ""
            for cycle in range(1, 4):
                redis.stop()
                with pytest.raises(ClusterDown):
                    cluster.call(lambda r: r.ping())
                status = cluster.status()
                assert not status.up and "ConnectionError" in status.problem
                with pytest.raises(ClusterDown, match="Redis"):
                    cluster.check()  # changes are refused at once, without asking Redis
                redis.start()
                wait_until(lambda: cluster.status().up, "back", 5)
                assert heard.count("back") == cycle  # every cache forgets, once per return
        finally:
            cluster.close()


def test_a_redis_url_is_shown_without_its_password():
    assert shown_url("rediss://pikdav:s3cret@db.example:6380/1") == "rediss://***@db.example:6380/1"
    assert shown_url("redis://db.example/0?password=s3cret") == "redis://db.example/0?password=***"
    assert shown_url("socks5h://me:pw@[::1") == "socks5h://***@[::1"
    assert shown_url("unix:///run/redis.sock") == "unix:///run/redis.sock"
    assert Cluster("redis://:s3cret@127.0.0.1:1/0").status().where == "redis://***@127.0.0.1:1/0"
