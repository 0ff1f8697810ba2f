"""Podman as the container test drives it, with no image registry: a storage of the test's own
under a temporary folder, a Debian 12 base image made of Debian's own packages by mmdebstrap, and
the settings that make podman work on a machine without systemd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.tools import run_tool, tool_env

# crun (podman's default here) fails with "cgroups in hybrid mode not supported", and the default
# ulimits fail on setrlimit; runc with cgroupfs works.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""

TOOLS = ("podman", "runc", "mmdebstrap", "slirp4netns")
# What the Dockerfile needs of a base: Python with its venv module, and trusted CAs for pip.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
SUITE = "bookworm"  # Debian 12, whose Python is 3.11 like the default base's
BASE_TAG = f"localhost/pikdav-test-base:{SUITE}"
# A cached root file system is made again after this long (Debian's security updates).
BASE_MAX_AGE = 7 * 24 * 3600
# The machine's certificate authorities, mounted into the build so that pip trusts what the
# machine trusts.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def require_prerequisites() -> None:
    """Fail (never skip) with what to install when a part is missing."""
    # podman finds runc in /usr/sbin whatever PATH says
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [tool for tool in TOOLS if shutil.which(tool, path=path) is None]
    assert not missing, (
        f"the container test needs {', '.join(missing)}: apt-get install {' '.join(missing)} "
        "(.ci/run installs them)"
    )
    assert os.geteuid() == 0, (
        "the container test runs podman and mmdebstrap as root, as CI does; rootless podman "
        "would need subordinate uid ranges (/etc/subuid) that this test does not set up"
    )
    assert CA_BUNDLE.is_file(), f"{CA_BUNDLE} is missing: apt-get install ca-certificates"


class Podman:
    """``podman`` with its images, containers and state under ``home`` (removed by ``close``)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        conf = home / "containers.conf"
        home.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
        self.env = tool_env(CONTAINERS_CONF=str(conf))
        self.prefix = ["podman", "--root", str(home / "storage"), "--runroot", str(home / "run")]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [*self.prefix, *args],
            env=self.env | (env or {}),
            timeout=timeout,
            check=check,
            text=True,
        )

    def inspect(self, name: str, kind: str = "container") -> dict:
        return json.loads(self(kind, "inspect", name).stdout)[0]

    def close(self) -> None:
        """Remove every container, volume and image of this storage, then the storage itself."""
        self("rm", "--force", "--volumes", "--all", check=False)
        self("rmi", "--force", "--all", check=False)
        self("volume", "prune", "--force", check=False)
        shutil.rmtree(self.home, ignore_errors=True)


def debian_rootfs(cache: Path) -> Path:
    """A minimal Debian root file system with ``BASE_PACKAGES``, as a tar: made by mmdebstrap
    from Debian's mirror, kept in ``cache`` and made again once it is a week old."""
    cache.mkdir(parents=True, exist_ok=True)
    tar = cache / f"debian-{SUITE}-minbase-{'-'.join(BASE_PACKAGES)}.tar"
    if tar.is_file() and time.time() - tar.stat().st_mtime < BASE_MAX_AGE:
        return tar
    partial = cache / f"partial-{os.getpid()}.tar"  # mmdebstrap picks the format by the suffix
    try:
        run_tool(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                SUITE,
                str(partial),
            ],
            env=tool_env(),
            timeout=600,
            text=True,
        )
        os.replace(partial, tar)
    finally:
        partial.unlink(missing_ok=True)
    return tar


def import_debian_base(podman: Podman, cache: Path) -> str:
    """The Debian base image in ``podman``'s storage; returns its tag."""
    podman("import", str(debian_rootfs(cache)), BASE_TAG, timeout=300)
    return BASE_TAG


def build_image(podman: Podman, context: Path, base: str, tag: str) -> None:
    """``podman build`` of the checkout's Dockerfile on ``base``. Docker's format keeps the
    HEALTHCHECK (OCI's drops it); the build reaches PyPI over the host's network."""
    podman(
        "build",
        "--format=docker",
        "--pull=never",
        "--network=host",
        "--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "--build-arg", f"BASE={base}",
        "--tag", tag,
        str(context),
        timeout=900,
    )  # fmt: skip
