"""The README's "Try your config on the emulator", run as printed: its commands start the
emulator and give it a file and a share, its config (only the ports and the printed share id
put in) passes ``pikdav check`` and serves alice's drive and the share, and ``pikdav shares
check -c`` reaches the emulator through the config's account."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from tests.support.command import PIKDAV, start
from tests.support.web import free_port

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _section() -> tuple[list[str], str, list[str]]:
    text = README.split("### Try your config on the emulator", 1)[1].split("\n### ", 1)[0]
    first, second = re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
    (config,) = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    return first.splitlines(), config, second.splitlines()


def _bash(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    # `pikdav` is this checkout's command.
    env["PATH"] = f"{Path(PIKDAV[0]).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_readme_config_on_the_emulator_serves_the_drive_and_the_share(tmp_path):
    setup, config, use = _section()
    emulator_port, gateway_port = str(free_port()), str(free_port())

    def ported(text: str) -> str:
        return text.replace("8123", emulator_port).replace("8080", gateway_port)

    started, *calls = [ported(line) for line in setup if not line.startswith("#")]
    assert started.startswith("pikdav emulator ") and started.endswith(" &")
    emulator = start(*shlex.split(started[: -len(" &")])[1:], log_path=tmp_path / "emu.log")
    gateway = None
    try:
        answers = []
        for line in calls:
            done = _bash(line, tmp_path)
            assert done.returncode == 0 and done.stdout, (line, done.stderr)
            answers.append(json.loads(done.stdout))
        share_id = answers[-1]["share_id"]
        assert "VSf3a1…" in config
        (tmp_path / "config.yaml").write_text(ported(config).replace("VSf3a1…", share_id))

        check, serve, read = (ported(line.partition("  #")[0].strip()) for line in use)
        checked = _bash(check, tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "signed in as user" in checked.stdout
        assert f"share mount films ({share_id}): OK, 1 item at the root" in checked.stdout

        gateway = start(*shlex.split(serve)[1:], log_path=tmp_path / "gateway.log", cwd=tmp_path)
        got = _bash(read.replace("curl ", "curl -sS -f ", 1), tmp_path)
        assert got.returncode == 0 and got.stdout == "hello\n", got.stderr
        mine = _bash(f"curl -sS -f -u me:wonderland {gateway.url}pikpak/Films/hello.txt", tmp_path)
        assert mine.returncode == 0 and mine.stdout == "hello\n", mine.stderr

        (tmp_path / "shares.txt").write_text(f"Films = https://mypikpak.com/s/{share_id}\n")
        listed = _bash("pikdav shares check -c config.yaml shares.txt", tmp_path)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert f"Films ({share_id}): OK, 1 item at the root" in listed.stdout
    finally:
        if gateway is not None:
            gateway.stop()
        emulator.stop()
