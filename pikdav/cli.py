"""The ``pikdav`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from . import __version__


def _account(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected USER:PASS")
    return user, password


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pikdav", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pikdav {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v: upstream calls)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    emu = sub.add_parser("emulator", help="run a PikPak-compatible server for tests and demos")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=0, help="0 picks a free port")
    emu.add_argument(
        "--account",
        action="append",
        type=_account,
        default=[],
        metavar="USER:PASS",
        help="create an account (repeatable)",
    )
    emu.add_argument("--tls-cert", help="serve TLS with this certificate (PEM)")
    emu.add_argument("--tls-key", help="the certificate's private key (PEM)")
    emu.add_argument("--state", help="folder for uploaded content (default: a temporary one)")
    emu.add_argument(
        "--token-ttl", type=int, default=7200, metavar="S", help="access token lifetime in seconds"
    )
    emu.add_argument(
        "--link-ttl", type=int, default=86400, metavar="S", help="download link lifetime in seconds"
    )
    return parser


def _stop_on_signal(*_: object) -> None:
    raise KeyboardInterrupt


def run_emulator(args: argparse.Namespace) -> int:
    from .emulator import Emulator

    if bool(args.tls_cert) != bool(args.tls_key):
        print("pikdav emulator: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    emulator = Emulator(
        args.host,
        args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        state_dir=args.state,
        token_ttl=args.token_ttl,
        link_ttl=args.link_ttl,
    )
    for user, password in args.account:
        emulator.world.add_account(user, password)
    emulator.server.prepare()
    print(emulator.base_url, flush=True)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        emulator.server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "emulator":
        return run_emulator(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
