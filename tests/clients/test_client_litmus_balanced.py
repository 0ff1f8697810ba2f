"""litmus through a real HAProxy in round robin over three ``pikdav serve`` processes that
share one Redis: every group passes completely, locks included (a lock taken through one
instance holds on the others, or the locks group could not pass with its requests spread)."""

from __future__ import annotations

from tests.clients.test_client_litmus import ALL_GROUPS, COUNTS, parse, run_litmus
from tests.support.cluster import haproxy, instances, requests_served
from tests.support.davclients import put_files
from tests.support.redis_server import redis_server


def test_litmus_through_a_balancer_over_three_instances_passes_104_of_104(emulator, tmp_path):
    put_files(emulator, {"Movies/a.mp4": b"not really a movie"})
    with (
        redis_server(tmp_path) as url,
        instances(tmp_path, emulator, url) as running,
        haproxy(tmp_path, [r.url for r in running]) as balancer,
    ):
        before = [requests_served(r) for r in running]
        output = run_litmus(f"{balancer}pikpak/", tmp_path, ALL_GROUPS)
        served = [requests_served(r) - b for r, b in zip(running, before, strict=True)]
    groups, summaries = parse(output)
    assert list(groups) == list(ALL_GROUPS), output
    for group in ALL_GROUPS:
        failed = [r for r in groups[group] if r.outcome == "FAIL"]
        assert failed == [], (group, failed)
        assert summaries[group] == (
            f"of {COUNTS[group]} tests run: {COUNTS[group]} passed, 0 failed. 100.0%"
        ), output
    assert sum(COUNTS.values()) == 104
    # Round robin: each instance served about a third of litmus's requests.
    total = sum(served)
    assert all(s > total / 5 for s in served), served
