"""The drop-folder part of a mount (vfs.offline.DropFolder) on its own, over alice's drive on
the emulator: it makes the offline folder at the mount's first use (never on a read-only
mount), knows which folder is it, turns a dropped link into a task listed beside a receipt,
says once, not at every request, why it cannot make the folder, and caps a user's links a
minute across two instances (two mounts, each with its own link to one real redis-server)."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from pikdav.pikpak.offline import OfflineTasks
from pikdav.vfs.cluster import Cluster, ClusterDown
from pikdav.vfs.errors import LinkRefused, LinksTooFast
from pikdav.vfs.mount import Mount
from pikdav.vfs.offline import DropFolder, Offline
from pikdav.vfs.spool import SpoolFile, SpoolSettings
from tests.support.davclients import put_files
from tests.support.pikpak_raw import account_stats, control
from tests.support.redis_server import redis_process
from tests.vfs.conftest import USER

TASK = re.compile(r"^sintel\.mkv \[\d{1,3}% (pending|running)\]\.task$")
MAGNET = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=sintel.mkv"


def stored(emulator, *, folders_only: bool = False) -> set[str]:
    rows = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    return {
        r["path"]
        for r in rows
        if not r["trashed"] and (r["kind"].endswith("folder") or not folders_only)
    }


def folders(emulator) -> set[str]:
    return stored(emulator, folders_only=True)


def test_the_offline_folder_is_made_with_its_parents_at_the_first_use(
    emulator, session, make_mount
):
    mount = make_mount(offline=Offline(OfflineTasks(session), "/Downloads/Links/"))
    assert folders(emulator) == set()  # nothing asked of PikPak before the first use
    assert mount.offline_folder == "Downloads/Links"

    mount.resolve([])

    assert folders(emulator) == {"Downloads", "Downloads/Links"}
    links = mount.resolve(["Downloads", "Links"])
    downloads = mount.resolve(["Downloads"])
    assert links is not None and downloads is not None
    assert mount.drop is not None
    assert mount.drop.is_it(links)
    assert not mount.drop.is_it(downloads) and not mount.drop.is_it(mount.root)


def test_a_read_only_mount_finds_its_offline_folder_but_never_makes_it(
    emulator, session, make_mount
):
    offline = Offline(OfflineTasks(session), "Links")
    read_only = make_mount(offline=offline, writing=None)
    read_only.resolve([])
    assert folders(emulator) == set()

    put_files(emulator, {"Links/old.txt": b"x"})
    drop = DropFolder(offline, read_only.tree)  # make=None: the mount may not change
    drop.make()
    links = read_only.resolve(["Links"])
    assert links is not None and drop.is_it(links)
    assert folders(emulator) == {"Links"}


def test_a_dropped_magnet_becomes_a_task_listed_beside_its_receipt(emulator, session, make_mount):
    mount = make_mount(offline=Offline(OfflineTasks(session), "Links"))
    links = mount.resolve(["Links"])
    assert links is not None
    body = SpoolFile(SpoolSettings(), None, exact=False)
    body.write(MAGNET.encode())

    receipt = mount.store(links, "film.magnet", body, None)

    assert [(t.url, t.parent_id) for t in emulator.world.tasks.values()] == [(MAGNET, links.id)]
    assert mount.drop is not None and mount.drop.started(receipt) == 1
    listed = {e.name: e for e in mount.children(links)}
    assert len(listed) == 2 and TASK.match(max(listed)), listed  # the receipt and the task
    assert listed["film.magnet"] == receipt
    with mount.open(listed["film.magnet"]) as read:
        assert read.read() == MAGNET.encode()
    assert stored(emulator) == {"Links"}  # the link file itself is not stored


def test_a_folder_that_cannot_be_made_is_said_once_not_at_every_request(
    emulator, session, make_mount, caplog
):
    put_files(emulator, {"Links": b"a file where the folder should be"})
    mount = make_mount(offline=Offline(OfflineTasks(session), "Links/Films"))
    with caplog.at_level(logging.WARNING, logger="pikdav.vfs.offline"):
        for _ in range(3):
            assert mount.resolve(["Links"]) is not None  # the mount still answers
    said = [r.getMessage() for r in caplog.records if "offline folder" in r.getMessage()]
    assert len(said) == 1 and "is a file, not a folder" in said[0], said


def drop_links(mount: Mount, name: str, count: int, user: str = "alice"):
    """``user`` puts a .txt of ``count`` links (new ones, named after the file) into Links."""
    folder = mount.resolve(["Links"])
    assert folder is not None
    body = SpoolFile(SpoolSettings(), None, exact=False)
    body.write("".join(f"https://example.org/{name}/{i}.iso\n" for i in range(count)).encode())
    return mount.store(folder, name, body, None, user=user)


@pytest.fixture
def two_instances(session, make_mount, redis_url):
    """The mount ``pikpak`` of two instances that share one Redis, 5 links a minute a user."""
    clusters = [Cluster(redis_url), Cluster(redis_url)]
    offline = Offline(OfflineTasks(session), "Links", links_per_minute=5)
    yield [make_mount(offline=offline, cluster=cluster) for cluster in clusters]
    for cluster in clusters:
        cluster.close()


def test_a_user_s_links_a_minute_are_counted_across_instances(emulator, two_instances):
    a, b = two_instances
    drop_links(a, "a.txt", 3)
    with pytest.raises(LinksTooFast, match="3 started in the last minute") as caught:
        drop_links(b, "b.txt", 3)  # 6 > 5, whichever instance it reaches
    assert 1 <= caught.value.retry_after <= 60
    drop_links(b, "two.txt", 2)
    drop_links(a, "bob.txt", 3, user="bob")  # another user's minute
    assert account_stats(emulator)["tasks_created"] == 8
    shared = a.cluster
    assert shared is not None  # the minute's key goes when the minute is over
    assert 0 < shared.client.ttl(shared.key("drops", "pikpak", "alice")) <= 61


def test_links_pikpak_refused_do_not_count_on_any_instance(emulator, two_instances):
    a, b = two_instances
    control(emulator.base_url, "config", {"task_daily_limit": 2})
    with pytest.raises(LinkRefused, match=r"\(2 of 3 started before it\)"):
        drop_links(a, "three.txt", 3)
    shared = a.cluster
    assert shared is not None  # counted down to 2, the key still goes with the minute
    assert 0 < shared.client.ttl(shared.key("drops", "pikpak", "alice")) <= 61
    control(emulator.base_url, "config", {"task_daily_limit": 100})
    drop_links(b, "more.txt", 3)  # 2 of the minute's 5 were used: 3 more fit
    with pytest.raises(LinksTooFast, match="5 started in the last minute"):
        drop_links(a, "one.txt", 1)
    assert account_stats(emulator)["tasks_created"] == 5


def drop_at_once(instances: list[Mount], user: str, drops: int) -> list[str]:
    """``drops`` one-link files of ``user``, put at the same moment, in turn through each
    instance: what each got."""
    answers: list[str] = []
    at_once = threading.Barrier(drops)

    def drop(n: int) -> None:
        at_once.wait(timeout=10)
        try:
            drop_links(instances[n % len(instances)], f"{user}-{n}.txt", 1, user=user)
            answers.append("started")
        except LinksTooFast:
            answers.append("refused")

    threads = [threading.Thread(target=drop, args=(n,)) for n in range(drops)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(answers)


def test_drops_at_once_on_two_instances_start_exactly_the_cap(emulator, two_instances):
    control(emulator.base_url, "config", {"task_daily_limit": 1000})
    for cycle in range(20):  # a fresh minute each cycle: another user
        answers = drop_at_once(two_instances, f"user{cycle}", 8)
        assert answers == ["refused"] * 3 + ["started"] * 5, (cycle, answers)
    assert account_stats(emulator)["tasks_created"] == 100


def test_a_drop_while_redis_is_down_is_refused_and_starts_nothing(
    emulator, session, make_mount, tmp_path
):
    with redis_process(tmp_path) as redis:
        cluster = Cluster(redis.url)
        offline = Offline(OfflineTasks(session), "Links", links_per_minute=5)
        mount = make_mount(offline=offline, cluster=cluster)
        assert mount.resolve(["Links"]) is not None
        redis.stop()
        for _ in range(2):  # found down by the drop, then known down before it
            with pytest.raises(ClusterDown, match="Redis"):
                drop_links(mount, "a.txt", 1)
        cluster.close()
    assert account_stats(emulator).get("tasks_created", 0) == 0
