"""The ``pikdav`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from . import __version__
from .pikpak.identity import PLATFORMS
from .pikpak.session import DRIVE_API, USER_API

DEFAULT_STATE = Path("~/.local/state/pikdav").expanduser()


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
    login = sub.add_parser("login", help="sign in to PikPak and store the tokens")
    login.add_argument("--username", help="PikPak e-mail, phone number or user name")
    login.add_argument("--password", help="PikPak password (asked for when not given)")
    login.add_argument("--refresh-token", help="log in with a refresh token instead")
    login.add_argument(
        "--platform",
        choices=sorted(PLATFORMS),
        default="web",
        help="client identity to use; a token works only with its platform",
    )
    login.add_argument("--captcha-token", help="a captcha token from a solved human check")
    login.add_argument(
        "--token-store",
        help="where to keep the tokens (file path or "
        "redis:// URL; default: ~/.local/state/pikdav/tokens/default.json)",
    )
    login.add_argument("--user-api", default=USER_API, help=argparse.SUPPRESS)
    login.add_argument("--drive-api", default=DRIVE_API, help=argparse.SUPPRESS)
    login.add_argument("--ca-cert", help=argparse.SUPPRESS)
    return parser


def run_login(args: argparse.Namespace) -> int:
    import getpass
    from datetime import datetime

    from .pikpak.errors import HumanCheckRequired, PikPakError
    from .pikpak.session import Credentials, Session
    from .pikpak.tokenstore import TokenStoreError, open_store

    if not args.username and not args.refresh_token:
        if not sys.stdin.isatty():
            print(
                "pikdav login: give --username (and --password) or --refresh-token", file=sys.stderr
            )
            return 2
        args.username = input("PikPak username (e-mail or phone): ").strip()
    password = args.password
    if args.username and not password and not args.refresh_token:
        if not sys.stdin.isatty():
            print("pikdav login: give --password, or run it in a terminal", file=sys.stderr)
            return 2
        password = getpass.getpass("PikPak password: ")
    store = open_store(args.token_store, DEFAULT_STATE / "tokens" / "default.json", "default")
    session = Session(
        Credentials(
            args.username or "",
            password,
            refresh_token=args.refresh_token,
            captcha_token=args.captcha_token,
        ),
        store,
        platform=PLATFORMS[args.platform],
        user_api=args.user_api,
        drive_api=args.drive_api,
        ca_cert=args.ca_cert,
    )
    try:
        token = session.login()
    except HumanCheckRequired as exc:
        print(
            f"PikPak wants a human check first. Open this page in a browser:\n  {exc.url}\n"
            "Solve the puzzle, then run pikdav login again with --captcha-token and the "
            "captcha_token shown in that page's address.",
            file=sys.stderr,
        )
        return 3
    except (PikPakError, TokenStoreError) as exc:
        print(f"pikdav login: {exc}", file=sys.stderr)
        return 1
    until = datetime.fromtimestamp(token.expires_at).astimezone()
    who = args.username or "(refresh token)"
    print(f"Signed in to PikPak as {who} (user id {token.user_id}, platform {args.platform}).")
    print(
        f"The access token is valid until {until:%Y-%m-%d %H:%M %Z}; pikdav refreshes it by itself."
    )
    print(f"Tokens are stored in {store.description}.")
    return 0


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
    if args.command == "login":
        return run_login(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
