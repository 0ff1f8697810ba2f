"""What people run pikdav with: the systemd unit (checked by systemd's own analyzer) and the
compose file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "pikdav.service"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is not installed: apt-get install systemd (see .ci/run)"
    return found


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart's program exists: point it at this environment's pikdav
    # (the unit's /usr/local/bin/pikdav is where `pip install pikdav` puts it on a server).
    pikdav = Path(sys.executable).parent / "pikdav"
    assert pikdav.is_file()
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/pikdav " in text
    unit = tmp_path / "pikdav.service"
    unit.write_text(text.replace("/usr/local/bin/pikdav", str(pikdav)))
    proc = subprocess.run(
        [systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # A misspelt key or a bad value is only a warning to systemd: any output is a failure.
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr

    security = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    level = re.search(r"Overall exposure level for pikdav.service: ([\d.]+)", security.stdout)
    assert level, security.stdout + security.stderr
    assert float(level.group(1)) <= 2.0, security.stdout  # systemd calls up to 3.9 "OK"


def test_the_unit_runs_what_the_readme_says(tmp_path):
    text = UNIT.read_text()
    assert "serve -c /etc/pikdav/config.yaml" in text and "StateDirectory=pikdav" in text
    readme = (ROOT / "README.md").read_text()
    assert "contrib/pikdav.service" in readme and "state_dir: /var/lib/pikdav" in readme


def test_the_compose_file_keeps_state_on_a_volume_and_redis_optional():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    pikdav = compose["services"]["pikdav"]
    assert pikdav["build"] == "." and "./data:/data" in pikdav["volumes"]
    assert "8080:8080" in pikdav["ports"] and "PIKPAK_PASSWORD" in pikdav["environment"]
    assert compose["services"]["redis"]["profiles"] == ["redis"]
