"""The container image, built from this checkout with podman on a Debian 12 base made of Debian's
own packages, and run as docker-compose.yml runs it: a config in the mounted /data that points at
an emulator on the host, checked from the host."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import requests
import yaml

from pikdav.dav.auth import hash_password
from tests.support.podman import (
    BASE_PACKAGES,
    SUITE,
    Podman,
    build_image,
    import_debian_base,
    require_prerequisites,
)

ROOT = Path(__file__).resolve().parent.parent
PIKPAK_USER, PIKPAK_PASSWORD = "alice@example.com", "correct horse"
DAV_USER, DAV_PASSWORD = "alice", "wonderland"
UID = 10001  # the image's pikdav user
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pikdav-tests"
# slirp4netns lets the container reach the host's loopback at this address, so the emulator
# listens on 127.0.0.1 only.
HOST_FROM_CONTAINER = "10.0.2.2"
STOP_CYCLES = 20

# Debian 12's podman-compose (1.0.3) has no `config` command, and its `--dry-run up` still
# creates networks and volumes, and ignores profiles; so the compose file is read here instead.
# The keys of the compose file's pikdav service that this test turns into podman flags, or
# knowingly leaves out (build, image: this test's build; ports: a free host port instead of
# 8080; restart: nothing restarts here; stop_grace_period: the test's stop is stricter).
COMPOSE_FLAGS = {"read_only", "tmpfs", "security_opt", "cap_drop", "environment", "volumes"}
COMPOSE_LEFT_OUT = {"build", "image", "ports", "restart", "stop_grace_period"}

pytestmark = pytest.mark.timeout(1800)  # a build from nothing: Debian's mirror, then PyPI


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    require_prerequisites()
    pm = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield pm
    finally:
        pm.close()


@pytest.fixture(scope="module")
def image(podman) -> str:
    tag = f"localhost/pikdav-test:{uuid.uuid4().hex[:8]}"
    build_image(podman, ROOT, import_debian_base(podman, CACHE), tag)
    return tag


def compose_service() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["pikdav"]


def compose_flags(service: dict, data: Path) -> list[str]:
    """The `podman run` flags for what docker-compose.yml's pikdav service asks of the container."""
    unknown = set(service) - COMPOSE_FLAGS - COMPOSE_LEFT_OUT
    assert not unknown, f"docker-compose.yml's pikdav service has keys this test ignores: {unknown}"
    flags = ["--read-only"] if service.get("read_only") else []
    flags += [f"--tmpfs={path}" for path in service.get("tmpfs", [])]
    flags += [f"--security-opt={opt}" for opt in service.get("security_opt", [])]
    flags += [f"--cap-drop={cap}" for cap in service.get("cap_drop", [])]
    flags += [f"--env={name}" for name in service.get("environment", [])]
    for volume in service.get("volumes", []):
        source, target = volume.split(":")
        assert source == "./data", volume
        flags.append(f"--volume={data}:{target}")
    return flags


def write_data_dir(data: Path, emulator_port: int) -> None:
    """A /data as the README tells a user to make it: config.yaml with the password from the
    environment, owned by the image's user."""
    upstream = f"http://{HOST_FROM_CONTAINER}:{emulator_port}"
    config = {
        "server": {"host": "0.0.0.0", "port": 8080},
        "state_dir": "/data",
        "accounts": {
            "main": {
                "username": PIKPAK_USER,
                "password": "${PIKPAK_PASSWORD}",
                "user_api": upstream,
                "drive_api": upstream,
            }
        },
        # proxy: the emulator's links name the address the container used, which the host
        # cannot reach.
        "mounts": [{"name": "pikpak", "account": "main", "download": "proxy"}],
        "users": {DAV_USER: {"password_hash": hash_password(DAV_PASSWORD)}},
    }
    data.mkdir(mode=0o700)
    (data / "config.yaml").write_text(yaml.safe_dump(config))
    for path in (data, data / "config.yaml"):
        os.chown(path, UID, UID)


def wait_until_serving(podman: Podman, name: str, url: str, timeout: float = 120) -> None:
    """Until /healthz answers 200 from the host; fails at once, with the logs, if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if podman.inspect(name)["State"]["Status"] != "running":
            break
        time.sleep(0.1)
    logs = podman("logs", name, check=False)
    raise AssertionError(f"{name} is not serving on {url}:\n{logs.stdout}{logs.stderr}")


def published_url(podman: Podman, name: str) -> str:
    """The host address that podman published the container's port 8080 on."""
    port = podman("port", name, "8080").stdout.strip().rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}"


def hrefs(multistatus: bytes) -> set[str]:
    return {e.text for e in ElementTree.fromstring(multistatus).iter("{DAV:}href")}


def test_the_image_serves_the_drive_from_its_volume_as_uid_10001_and_stops_within_5_s(
    podman, image, emulator, tmp_path
):
    # Given a file on the drive and a /data with the config the README describes
    acct = emulator.world.accounts[PIKPAK_USER]
    folder = emulator.world.ensure_path(acct, "Docs")
    content = os.urandom(300_000)
    blob = emulator.world.blobs.add_bytes(content)
    emulator.world.add_node(acct, folder, "report.bin", "drive#file", blob=blob)
    data = tmp_path / "data"
    write_data_dir(data, urlsplit(emulator.base_url).port)

    # When the image runs under docker-compose.yml's settings, the password in its environment
    name = f"pikdav-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", f"--name={name}",
        "--network=slirp4netns:allow_host_loopback=true",
        "--publish=127.0.0.1::8080",
        *compose_flags(compose_service(), data),
        image,
        env={"PIKPAK_PASSWORD": PIKPAK_PASSWORD},
    )  # fmt: skip
    url = published_url(podman, name)
    wait_until_serving(podman, name, url)

    # Then its own health check passes
    health = podman("healthcheck", "run", name, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    assert podman.inspect(name)["State"]["Health"]["Status"] == "healthy"

    # and the process (PID 1 in the container) runs as the image's user, not root
    pid = podman.inspect(name)["State"]["Pid"]
    ids = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in ids.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(UID)] * 4, uid_line

    # and a client on the host lists the drive and downloads the file
    auth = (DAV_USER, DAV_PASSWORD)
    listing = requests.request(
        "PROPFIND", url + "/pikpak/Docs/", auth=auth, headers={"Depth": "1"}, timeout=30
    )
    assert listing.status_code == 207, listing.text
    assert "/pikpak/Docs/report.bin" in hrefs(listing.content)
    download = requests.get(url + "/pikpak/Docs/report.bin", auth=auth, timeout=60)
    assert download.status_code == 200 and download.content == content

    # and the token store is in the volume, the user's, without the password
    tokens = data / "tokens" / "main.json"
    assert tokens.is_file(), sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    assert tokens.stat().st_uid == UID
    assert PIKPAK_PASSWORD not in tokens.read_text()

    # When it is stopped with a 5 s grace period while a client holds a kept-alive connection,
    # then started again, 20 times
    for cycle in range(STOP_CYCLES):
        if cycle:
            podman("start", name)
            url = published_url(podman, name)
            wait_until_serving(podman, name, url)
        with requests.Session() as client:
            listing = client.request(
                "PROPFIND", url + "/pikpak/Docs/", auth=auth, headers={"Depth": "1"}, timeout=30
            )
            assert listing.status_code == 207, (cycle, listing.text)
            stop = podman("stop", "--time=5", name)
        # Then it ends on SIGTERM by itself each time: a SIGKILL after the grace period would
        # make it exit 137
        state = podman.inspect(name)["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0, (cycle, state)
        assert "SIGKILL" not in stop.stderr, (cycle, stop.stderr)
    logs = podman("logs", name)
    assert "Traceback" not in logs.stdout + logs.stderr
    assert PIKPAK_PASSWORD not in logs.stdout + logs.stderr
    podman("rm", "--volumes", name)


def test_the_image_holds_no_config_no_state_and_no_source(podman, image):
    config = podman.inspect(image, "image")["Config"]
    assert not any(var.startswith("PIKPAK") for var in config.get("Env", [])), config["Env"]
    assert config["User"] == "pikdav" and "/data" in config["Volumes"]
    rootfs = Path(podman("image", "mount", image).stdout.strip())
    try:
        assert list((rootfs / "data").iterdir()) == []
        assert (rootfs / "data").stat().st_uid == UID
        assert not (rootfs / "usr/src/pikdav").exists()
        assert (rootfs / "opt/pikdav/bin/pikdav").is_file()
    finally:
        podman("image", "unmount", image)


def test_the_readme_builds_the_debian_base_as_ci_does():
    readme = (ROOT / "README.md").read_text()
    include = ",".join(BASE_PACKAGES)
    assert f"mmdebstrap --variant=minbase --include={include} {SUITE} rootfs.tar" in readme
    assert "podman build --format docker --build-arg BASE=" in readme
