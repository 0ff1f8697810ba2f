"""The ``pikdav`` command: ``serve``, ``demo``, ``emulator``, ``check``, ``login``,
``shares check`` and ``hash-password``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .pikpak.http import DRIVE_API, USER_API
from .pikpak.identity import PLATFORMS
from .pikpak.retry import pause_for
from .pikpak.types import ORIGINAL
from .version import version_text

DEMO_PORT = 8080


def _account(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected USER:PASS")
    return user, password


class _Version(argparse.Action):
    """``--version``: asks git only when it is given (every other run skips it)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikdav",
        description="pikdav serves a PikPak cloud drive over WebDAV, for Windows Explorer, "
        "macOS Finder, Infuse, Kodi, rclone and other WebDAV clients. Try it with `pikdav "
        "demo`; run it with `pikdav serve -c config.yaml`.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="show the version (and commit) and exit"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v: upstream calls)"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text (default): one readable line per event; json: one JSON object per line "
        "(time, level, logger, message), for journald, Loki or Docker's log drivers",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="the least important events logged (default: info; debug includes every "
        "upstream call, as -v does)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_emulator,
        _add_serve,
        _add_demo,
        _add_check,
        _add_shares,
        _add_bans,
        _add_hash_password,
        _add_login,
        _add_offline,
    ):
        add(sub)
    return parser


def _add_emulator(sub) -> None:
    emu = sub.add_parser("emulator", help="run a PikPak-compatible server for tests and demos")
    emu.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    emu.add_argument(
        "--port", type=int, default=0, help="port to listen on (default 0: a free one)"
    )
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


def _add_serve(sub) -> None:
    serve = sub.add_parser("serve", help="run the WebDAV gateway")
    serve.add_argument("-c", "--config", required=True, help="YAML config file")


def _add_demo(sub) -> None:
    demo = sub.add_parser("demo", help="run the gateway on the built-in emulator with sample files")
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to listen on (default: {DEMO_PORT}, or a free one if {DEMO_PORT} is busy; "
        "0 picks a free one)",
    )
    demo.add_argument("--password", help="the demo user's password (default: random)")


def _add_check(sub) -> None:
    check = sub.add_parser(
        "check",
        help="validate a config, log in, show tokens and quota, and each share mount's state",
    )
    check.add_argument("-c", "--config", required=True, help="YAML config file")


def _add_shares(sub) -> None:
    shares = sub.add_parser("shares", help="share lists: check every share of a list file")
    shares_sub = shares.add_subparsers(dest="shares_command", required=True)
    shares_check = shares_sub.add_parser(
        "check", help="print each share's status (a list file of share_list) without a server"
    )
    shares_check.add_argument("list_file", help="the list file (name = link [pass code], or YAML)")
    shares_check.add_argument(
        "-c",
        "--config",
        help="reach PikPak as this config's account does (its platform, user_api, drive_api, "
        "ca_cert and proxy; never its login): for the emulator, a mirror or a proxy",
    )
    shares_check.add_argument(
        "--account", help="which account of the config (default: the only one)"
    )
    shares_check.add_argument(
        "--platform", choices=sorted(PLATFORMS), default=None, help="client identity to use"
    )
    shares_check.add_argument(
        "--user-api", default=None, help=f"PikPak's sign-in host (default: {USER_API})"
    )
    shares_check.add_argument(
        "--drive-api", default=None, help=f"PikPak's drive host (default: {DRIVE_API})"
    )
    shares_check.add_argument("--ca-cert", help="extra CA bundle (PEM) for PikPak's hosts")


def _add_bans(sub) -> None:
    bans = sub.add_parser("bans", help="the ban on password guessing: lift bans without a restart")
    bans_sub = bans.add_subparsers(dest="bans_command", required=True)
    lift = bans_sub.add_parser(
        "lift",
        help="lift the ban on client addresses now (the running server reads the request "
        "from its state_dir at the address's next request)",
    )
    lift.add_argument("-c", "--config", required=True, help="the running server's config")
    lift.add_argument("addresses", nargs="*", metavar="ADDRESS", help="a banned client address")
    lift.add_argument("--all", action="store_true", help="lift every ban")


def _add_hash_password(sub) -> None:
    hashp = sub.add_parser("hash-password", help="hash a DAV user's password for the config")
    hashp.add_argument("--stdin", action="store_true", help="read the password from stdin")


def _add_login(sub) -> None:
    login = sub.add_parser("login", help="sign in to PikPak and store the tokens")
    login.add_argument("--username", help="PikPak e-mail, phone number or user name")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument(
        "--password",
        help="PikPak password (asked for when not given). Visible to other users in `ps` "
        "and kept in shell history: prefer the prompt or --password-stdin",
    )
    secret.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the PikPak password from the first line of stdin (for scripts and pipes)",
    )
    login.add_argument("--refresh-token", help="log in with a refresh token instead")
    login.add_argument("-c", "--config", help="take the account's settings from this config")
    login.add_argument("--account", help="which account of the config (default: the only one)")
    login.add_argument(
        "--platform",
        choices=sorted(PLATFORMS),
        default=None,
        help="client identity to use (default: web, or the config's); a token works only "
        "with its platform",
    )
    login.add_argument("--captcha-token", help="a captcha token from a solved human check")
    login.add_argument(
        "--token-store",
        help="where to keep the tokens (file path or "
        "redis:// URL; default: ~/.local/state/pikdav/tokens/default.json)",
    )
    # Hosts for the emulator, a mirror or a test: not shown in the help.
    login.add_argument("--user-api", default=USER_API, help=argparse.SUPPRESS)
    login.add_argument("--drive-api", default=DRIVE_API, help=argparse.SUPPRESS)
    login.add_argument("--ca-cert", help=argparse.SUPPRESS)


def _add_offline(sub) -> None:
    offline = sub.add_parser(
        "offline",
        help="offline downloads: PikPak fetches magnet, http and ed2k links into the drive",
    )
    tasks = offline.add_subparsers(dest="action", required=True)
    for name, text in (
        ("add", "start downloads of links"),
        ("list", "show the tasks, their phase and progress"),
        ("delete", "delete tasks (their files stay)"),
        ("retry", "start a failed task again"),
    ):
        task = tasks.add_parser(name, help=text)
        task.add_argument("-c", "--config", required=True, help="YAML config file")
        task.add_argument(
            "--mount", help="whose account, and whose offline_folder (default: the first)"
        )
        if name == "add":
            task.add_argument(
                "urls", nargs="+", metavar="URL", help="magnet:, http(s):// or ed2k:// link"
            )
            task.add_argument(
                "--folder",
                help="folder below the mount's root to download into, made when missing "
                "(default: the mount's offline_folder, else PikPak's My Pack)",
            )
        elif name == "delete":
            task.add_argument("ids", nargs="+", metavar="ID", help="task id (from `list`)")
        elif name == "retry":
            task.add_argument("id", metavar="ID", help="task id (from `list`)")


def run_login(args: argparse.Namespace) -> int:
    from .assembly import session_for
    from .config import DEFAULT_STATE_DIR, AccountConfig
    from .pikpak.errors import HumanCheckRequired, PikPakError
    from .pikpak.tokenstore import TokenStoreError

    if args.password_stdin:
        args.password = sys.stdin.readline().rstrip("\r\n")
        if not args.password:
            print("pikdav login: --password-stdin read an empty line", file=sys.stderr)
            return 2
    # Without a config: the default store, and the environment's proxy, as every HTTP tool.
    where = (Path(DEFAULT_STATE_DIR).expanduser() / "tokens" / "default.json", "default")
    hint, proxy = "pikdav login", None
    try:
        if args.config:
            hint, proxy, where = _take_account(args)
        args.platform = args.platform or "web"
        password = _ask_credentials(args)
    except _LoginRefused as exc:
        if str(exc):
            print(f"pikdav login: {exc}", file=sys.stderr)
        return 2
    store_path, store_name = where
    account = AccountConfig(
        store_name,
        username=args.username or "",
        password=password,
        refresh_token=args.refresh_token,
        platform=args.platform,
        token_store=args.token_store,
        user_api=args.user_api,
        drive_api=args.drive_api,
        ca_cert=Path(args.ca_cert) if args.ca_cert else None,
        proxy=proxy,
    )
    session = session_for(account, store_path, login=hint, captcha_token=args.captcha_token)
    try:
        previous = session.store.load()
        token = session.login()
    except HumanCheckRequired as exc:
        print(
            f"PikPak wants a human check first. Open this page in a browser:\n  {exc.url}\n"
            f"Solve the puzzle, then run `{hint} --captcha-token TOKEN` with the "
            "captcha_token shown in that page's address.",
            file=sys.stderr,
        )
        return 3
    except (PikPakError, TokenStoreError) as exc:
        print(f"pikdav login: {exc}", file=sys.stderr)
        return 1
    _print_signed_in(args, token, session.store, previous)
    return 0


class _LoginRefused(Exception):
    """``pikdav login`` cannot go on (exit status 2); the text, if any, says why."""


def _take_account(args: argparse.Namespace):
    """Fills ``args`` from the config's account, to log in the way ``serve -c`` will use it:
    the account's store, platform and hosts. Returns (hint, proxy, (store path, store name))."""
    from .assembly import login_command

    config = _load(args.config)
    if config is None:
        raise _LoginRefused()  # _load said why
    if not config.accounts:
        raise _LoginRefused(f"{args.config} has no accounts (share mounts need no login)")
    name = args.account or (next(iter(config.accounts)) if len(config.accounts) == 1 else None)
    if name not in config.accounts:
        raise _LoginRefused(
            f"name one of the accounts with --account: {', '.join(config.accounts)}"
        )
    account = config.accounts[name]
    args.username = args.username or account.username
    args.password = args.password or account.password
    args.refresh_token = args.refresh_token or (
        account.refresh_token if not args.password else None
    )
    args.platform = account.platform if args.platform is None else args.platform
    args.token_store = args.token_store or account.token_store
    args.user_api, args.drive_api = account.user_api, account.drive_api
    args.ca_cert = args.ca_cert or (str(account.ca_cert) if account.ca_cert else None)
    # account.proxy: sign in the way `serve` will reach PikPak
    return (
        login_command(config, account),
        account.proxy,
        (config.token_path(account), account.name),
    )


def _ask_credentials(args: argparse.Namespace):
    """Asks in a terminal for what the flags and the config left out; returns the password
    (None with a refresh token)."""
    import getpass

    if not args.username and not args.refresh_token:
        if not sys.stdin.isatty():
            raise _LoginRefused("give --username (and --password-stdin) or --refresh-token")
        args.username = input("PikPak username (e-mail or phone): ").strip()
    password = args.password
    if args.username and not password and not args.refresh_token:
        if not sys.stdin.isatty():
            raise _LoginRefused(
                "give --password-stdin (and the password on stdin), or run it in a terminal"
            )
        password = getpass.getpass("PikPak password: ")
    return password


def _print_signed_in(args: argparse.Namespace, token, store, previous) -> None:
    from datetime import datetime

    until = datetime.fromtimestamp(token.expires_at).astimezone()
    who = args.username or "(refresh token)"
    print(f"Signed in to PikPak as {who} (user id {token.user_id}, platform {args.platform}).")
    print(
        f"The access token is valid until {until:%Y-%m-%d %H:%M %Z}; pikdav refreshes it by itself."
    )
    print(f"Tokens are stored in {store.description}.")
    if previous is not None and previous.pause is not None:
        print("Sign-ins were paused for this account; that pause is over now.")


def _load(path: str):
    from .config import ConfigError, load_config, prepare_state_dir

    try:
        config = load_config(path)
        prepare_state_dir(config)
        return config
    except ConfigError as exc:
        print(f"pikdav: {exc}", file=sys.stderr)
        return None


class _StopRequest:
    """SIGTERM or SIGINT asks for a stop; a second one exits at once.

    The handler only notes the signal. It used to raise KeyboardInterrupt, which surfaced at
    any bytecode of the thread running cheroot's accept loop, also between a lock's acquire
    and its release inside ``queue.Queue.put`` and ``threading.Condition.notify``: a
    ``notify`` cut after releasing a waiter's lock but before dropping it from the waiter list
    left a stale waiter that swallowed the next wake-up, so one worker never saw its shutdown
    request and cheroot's ``ThreadPool.stop`` joined it forever (the hang of
    ``test_login_with_config_then_serve``). Nothing is raised into cheroot now; the main
    thread waits for the flag and stops the server from outside its loops."""

    def __init__(self) -> None:
        self.signum = 0

    def handle(self, signum: int, _frame: object) -> None:
        if self.signum:
            os.write(2, b"pikdav: second signal: exiting at once\n")
            os._exit(128 + signum)
        self.signum = signum

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)


def _serve_until_signalled(server, on_stop=None) -> int:
    """Run a prepared server until SIGTERM/SIGINT, then stop it within a few seconds whatever
    is open (see pikdav.httpserver.Server.stop). 0 after a requested stop."""
    request = _StopRequest()
    request.install()
    loop = threading.Thread(target=server.serve, name="pikdav-accept", daemon=True)
    loop.start()
    while not request.signum and loop.is_alive():
        pause_for(0.1)  # not an Event: a signal handler must not take a lock
    log = logging.getLogger("pikdav")
    if request.signum:
        log.info("stopping (%s)", signal.Signals(request.signum).name)
    else:
        log.error("the server's accept loop ended by itself; stopping")
    server.stop()
    loop.join(timeout=1)
    if on_stop is not None:
        on_stop()
    log.info("stopped")
    lingering = [
        t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]
    if lingering:
        # Python would wait for them at exit (an upload's part in flight, say): the stop must
        # not. What was journaled resumes at the next start.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if request.signum else 1)
    return 0 if request.signum else 1


def run_serve(args: argparse.Namespace) -> int:
    from .assembly import build_app_and_metrics, build_mounts, make_metrics_server, make_server

    config = _load(args.config)
    if config is None:
        return 2
    mounts = build_mounts(config)
    app, metrics = build_app_and_metrics(config, mounts)
    server = make_server(config, app)
    metrics_server = make_metrics_server(config, metrics)
    for listener, key in ((server, "server.port"), (metrics_server, "server.metrics_addr")):
        if listener is None:
            continue
        try:
            listener.prepare()
        except OSError as exc:  # a ListenError says which address and why
            hint = ""
            if "address already in use" in str(exc):
                free = "0" if listener is server else "HOST:0"
                hint = (
                    f"; choose another {key} in {args.config} ({free} picks a free one), "
                    "or stop the program that holds it"
                )
            print(f"pikdav: {exc}{hint}", file=sys.stderr)
            return 1
    if metrics_server is not None:
        threading.Thread(target=metrics_server.serve, name="pikdav-metrics", daemon=True).start()
        m_host, m_port = metrics_server.bind_addr[:2]
        logging.getLogger("pikdav").info("metrics on http://%s:%s/metrics", m_host, m_port)
    scheme = "https" if config.server.tls_cert else "http"
    host, port = server.bind_addr[:2]
    print(f"{scheme}://{host}:{port}/", flush=True)
    logging.getLogger("pikdav").info(
        "serving %s on %s://%s:%s/", ", ".join(m.name for m in mounts), scheme, host, port
    )
    disk = next((m.tree.disk for m in mounts if m.tree.disk is not None), None)
    try:

        def on_stop() -> None:
            _give_up_uploads(mounts)
            if disk is not None:
                disk.close()  # blocks still on their way to the disk cache are written

        return _serve_until_signalled(server, on_stop=on_stop)
    finally:
        if metrics_server is not None:
            metrics_server.stop()


GIVE_UP_SECONDS = 1.5  # how long a stop waits for the temporaries of cut uploads to go


def _give_up_uploads(mounts: list) -> None:
    """The uploads the stop cut delete their temporaries on PikPak, within a bound (what is
    left then goes at the next start)."""
    workers = [
        threading.Thread(target=m.give_up_uploads, name="pikdav-give-up", daemon=True)
        for m in mounts
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + GIVE_UP_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))


def run_demo(args: argparse.Namespace) -> int:
    from .assembly import build_app, build_mounts, make_server
    from .config import parse_config
    from .dav.auth import hash_password
    from .demo import demo_config, instructions, new_password, start_demo_emulator

    password = args.password or new_password()
    port = DEMO_PORT if args.port is None else args.port
    emulator = start_demo_emulator()
    config = parse_config(demo_config(emulator, args.host, port, hash_password(password)), "demo")
    server = make_server(config, build_app(config, build_mounts(config)))
    try:
        server.prepare()
    except OSError as exc:
        if args.port is not None:  # a port the user chose: theirs to change, not ours
            print(
                f"pikdav demo: {exc}; choose another --port (0 picks a free one)", file=sys.stderr
            )
            emulator.stop()
            return 1
        print(f"pikdav demo: port {port} is busy; using a free one", file=sys.stderr)
        server.bind_addr = (args.host, 0)
        try:
            server.prepare()
        except OSError as again:
            print(f"pikdav demo: {again}", file=sys.stderr)
            emulator.stop()
            return 1
    host, port = server.bind_addr[:2]
    print(instructions(f"http://{host}:{port}/", "demo", password), flush=True)
    return _serve_until_signalled(server, on_stop=emulator.stop)


def run_check(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .assembly import account_session
    from .pikpak.drive import Drive
    from .pikpak.errors import LoginPaused, PikPakError
    from .pikpak.retry import CHECK
    from .pikpak.tokenstore import TokenStoreError

    config = _load(args.config)
    if config is None:
        return 2
    print(
        f"{config.source}: the configuration is valid ({_count(len(config.mounts), 'mount')}, "
        f"{_count(len(config.users), 'user')})."
    )
    failed = 0
    sessions = {}
    for account in config.accounts.values():
        # A person waits at a terminal: a refused connection fails within seconds.
        session = account_session(config, account, pool_size=4, retry=CHECK)
        sessions[account.name] = session
        try:
            stored = session.store.load()
            held = stored.token if stored else None
            state = (
                "no login stored yet"
                if held is None
                else f"stored login, access token valid until "
                f"{datetime.fromtimestamp(held.expires_at).astimezone():%Y-%m-%d %H:%M}"
            )
            quota = Drive(session).about()
            paused = session.paused()
        except LoginPaused as exc:
            print(f"account {account.name}: FAILED: sign-ins are paused: {exc}")
            failed += 1
            continue
        except (PikPakError, TokenStoreError) as exc:
            print(f"account {account.name}: FAILED: {exc}")
            print(f"  proxy: {session.connection.proxy_origin()}")
            failed += 1
            continue
        token = session.auth.token
        limit = "unlimited" if quota.unlimited else f"{quota.limit / 2**30:.1f} GiB"
        print(
            f"account {account.name} ({account.username or 'refresh token'}, "
            f"{account.platform}): {state}; tokens in {session.store.description}"
        )
        print(
            f"  signed in as user {token.user_id}; token valid until "
            f"{datetime.fromtimestamp(token.expires_at).astimezone():%Y-%m-%d %H:%M}"
        )
        print(f"  password: {_password_state(session, account.password)}")
        print(f"  {_proxy_state(session)}")
        print(
            f"  quota: {quota.usage / 2**30:.2f} GiB used of {limit} "
            f"({quota.usage_in_trash / 2**30:.2f} GiB in the trash)"
        )
        if paused is not None:
            # The token works for now, but the next sign-in would be refused.
            print(f"  sign-ins are paused: {paused}")
            failed += 1
    for mount in config.mounts:
        if mount.is_share:
            continue
        line = _links_state(mount, config.account_for(mount), sessions)
        if line:
            print(line)
    failed += _check_share_mounts(config)
    return 1 if failed else 0


def _links_state(mount, account, sessions) -> str:
    """The mount's link kind and download host, probing the CDN nodes for ``auto``."""
    from .assembly import link_route
    from .pikpak.http import cdn_session

    parts = [f"links: {mount.link}"]
    if mount.download_domain != "keep":
        parts.append(f"download domain {mount.download_domain}")
    route = link_route(mount, account, cdn_session(sessions[account.name].connection))
    if route is not None and mount.cdn_node == "auto":
        choice = route.probe()
        if choice is None:
            parts.append(f"CDN node auto: none of {len(route.nodes)} nodes answered")
        else:
            parts.append(
                f"CDN node {choice.host} ({choice.latency * 1000:.0f} ms; "
                f"{choice.answered} of {choice.probed} nodes answered)"
            )
    elif mount.cdn_node != "off":
        parts.append(f"CDN node {mount.cdn_node}")
    if len(parts) == 1 and mount.link == ORIGINAL:
        return ""
    return f"mount {mount.name}: " + "; ".join(parts)


def _proxy_state(session) -> str:
    """Which proxy the account's calls took; PikPak answered them, or we would not be here."""
    origin = session.connection.proxy_origin()
    hosts = f"{session.connection.user_api}, {session.connection.drive_api}"
    if session.connection.proxy_for(session.connection.drive_api):
        return f"proxy: {origin}; PikPak ({hosts}) answered through it"
    return f"proxy: {origin}; PikPak ({hosts}) answered directly"


def _check_share_mounts(config) -> int:
    """Print every share mount's status (reading each share's root); the failures' count."""
    from .assembly import share_list_source, share_session, share_source
    from .pikpak.retry import CHECK

    failed = 0
    for mount in config.mounts:
        if not mount.is_share:
            continue
        session = share_session(config, mount, pool_size=4, retry=CHECK)  # a person waits
        if mount.share_list is not None:
            source = share_list_source(mount, session)
            checked = source.check()
            bad = source.bad_lines
            ok = sum(status.ok for _, status in checked)
            print(
                f"share list {mount.name} ({mount.share_list}): {ok} of "
                f"{_count(len(checked), 'share')} open"
                + (f", {_count(len(bad), 'bad line')} skipped (FAILED)" if bad else "")
            )
            for line in bad:
                print(f"  {line}")
            for entry, status in checked:
                print(f"  {_share_line(entry.name, status)}")
            failed += len(bad) + len(checked) - ok
            continue
        status = share_source(config, mount, session=session).check()
        print(f"share mount {_share_line(mount.name, status)}")
        failed += not status.ok
    return failed


def _share_line(name: str, status) -> str:
    code = "pass code used" if status.pass_code_used else "no pass code"
    if status.ok:
        return (
            f"{name} ({status.share_id}): OK, "
            f"{_count(status.files_at_root or 0, 'item')} at the root, {code}"
        )
    return f"{name} ({status.share_id}): FAILED: {status.state}: {status.advice} ({code})"


def run_shares(args: argparse.Namespace) -> int:
    from .assembly import anonymous_session
    from .pikpak.retry import CHECK
    from .pikpak.shares import SharedFolder
    from .vfs.sharelist import ShareListSource

    list_file = Path(args.list_file)
    if not list_file.is_file():
        print(f"pikdav: no such file: {list_file}", file=sys.stderr)
        return 2
    where = _share_connection(args)
    if where is None:
        return 2
    platform, user_api, drive_api, ca_cert, proxy = where
    session = anonymous_session(
        args.platform or platform,
        (args.user_api or user_api).rstrip("/"),
        (args.drive_api or drive_api).rstrip("/"),
        args.ca_cert or ca_cert,
        name="shares check",
        pool_size=4,
        retry=CHECK,
        proxy=proxy,
    )
    source = ShareListSource(
        list_file.name,
        list_file,
        lambda entry: SharedFolder(session, entry.link.share_id, entry.link.pass_code),
    )
    checked = source.check()
    for line in source.bad_lines:
        print(f"{list_file}: {line}: skipped")
    for entry, status in checked:
        print(_share_line(entry.name, status))
    ok = sum(status.ok for _, status in checked)
    bad = source.bad_lines
    print(
        f"{ok} of {_count(len(checked), 'share')} open"
        + (f"; FAILED: {_count(len(bad), 'line')} of the list could not be read" if bad else "")
    )
    return 0 if ok == len(checked) and not bad else 1


def _share_connection(args: argparse.Namespace):
    """Platform, user_api, drive_api, ca_cert and proxy for reading shares: the config's
    account (with ``-c``; a config of shares alone: its first share mount), else PikPak's."""
    if not args.config:
        return "web", USER_API, DRIVE_API, None, None
    config = _load(args.config)
    if config is None:
        return None
    if args.account or config.accounts:
        name = args.account or (next(iter(config.accounts)) if len(config.accounts) == 1 else None)
        if name not in config.accounts:
            print(
                "pikdav shares check: name one of the accounts with --account: "
                + ", ".join(config.accounts),
                file=sys.stderr,
            )
            return None
        source = config.accounts[name]
        proxy = source.proxy
    else:
        source = next(mount for mount in config.mounts if mount.is_share)
        proxy = None
    ca_cert = str(source.ca_cert) if source.ca_cert else None
    return source.platform, source.user_api, source.drive_api, ca_cert, proxy


def _password_state(session, password: str | None) -> str:
    if session.last_sign_in is not None:
        return "verified (pikdav signed in with it just now)"
    if not password:
        return (
            "none configured; when PikPak refuses the refresh token, run "
            f"`{session.login_hint}` to sign in again"
        )
    return (
        "NOT verified: pikdav used the stored token and did not sign in; it uses the "
        "password only when PikPak refuses the refresh token. To test the password now, "
        f"run `{session.login_hint}`"
    )


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def run_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from .dav.auth import hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not sys.stdin.isatty():
        # Without a terminal there is no second prompt to catch a typo: say how to pipe it.
        print(
            "pikdav hash-password: no terminal to ask for the password twice; to read it from "
            "standard input give --stdin (printf '%s' PASSWORD | pikdav hash-password --stdin)",
            file=sys.stderr,
        )
        return 2
    else:
        password = getpass.getpass("DAV password: ")
        if getpass.getpass("again: ") != password:
            print("pikdav: the two passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("pikdav: an empty password is not allowed", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def run_bans(args: argparse.Namespace) -> int:
    from .dav.auth import LIFT_ALL, request_lift
    from .dav.policy import parse_ip

    config = _load(args.config)
    if config is None:
        return 2
    if args.all == bool(args.addresses):
        print("pikdav bans lift: give the banned addresses, or --all", file=sys.stderr)
        return 2
    for address in args.addresses:
        if parse_ip(address) is None:
            print(f"pikdav bans lift: {address!r} is not an IP address", file=sys.stderr)
            return 2
    addresses = [LIFT_ALL] if args.all else [str(parse_ip(a)) for a in args.addresses]
    requests = config.auth_settings().lift_requests
    assert requests is not None
    try:
        request_lift(requests, addresses)
    except OSError as exc:
        print(
            f"pikdav bans lift: cannot write {requests}: {exc.strerror} (run it as the user "
            "pikdav runs as)",
            file=sys.stderr,
        )
        return 1
    which = "every ban" if args.all else "the ban on " + ", ".join(addresses)
    print(
        f"asked pikdav to lift {which}: it does so at the next request of a banned address "
        f"(the request waits in {requests}; pikdav must use this config's state_dir)"
    )
    return 0


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
    try:
        emulator.server.prepare()
    except OSError as exc:
        print(f"pikdav emulator: {exc}", file=sys.stderr)
        return 1
    print(emulator.base_url, flush=True)
    return _serve_until_signalled(emulator.server, on_stop=emulator.stop)


def run_offline(args: argparse.Namespace) -> int:
    from .assembly import account_session, build_mounts
    from .pikpak.errors import PikPakError
    from .pikpak.retry import CHECK
    from .vfs.errors import MountError

    config = _load(args.config)
    if config is None:
        return 2
    names = [m.name for m in config.mounts]
    name = args.mount or names[0]
    if name not in names:
        print(
            f"pikdav offline: no mount is named {name!r} (mounts: {', '.join(names)})",
            file=sys.stderr,
        )
        return 2
    account = config.account_for(name)
    sessions = {account.name: account_session(config, account, pool_size=4, retry=CHECK)}
    mount = next(m for m in build_mounts(config, sessions, background=False) if m.name == name)
    if mount.offline is None:
        print(f"pikdav offline: mount {name} cannot start offline downloads", file=sys.stderr)
        return 2
    try:
        if args.action == "add":
            for url in args.urls:
                task = mount.add_offline(url, args.folder)
                print(f"{task.id}\t{_phase(task.phase)}\t{task.name or task.file_name}")
        elif args.action == "list":
            for task in mount.offline.list():
                name_shown = task.name or task.file_name
                print(f"{task.id}\t{_phase(task.phase)}\t{task.progress}%\t{name_shown}")
        elif args.action == "delete":
            unknown = mount.offline.delete(args.ids)
            if len(unknown) < len(args.ids):
                deleted = len(args.ids) - len(unknown)
                print(f"deleted {_count(deleted, 'task')} (their files stay)")
            if unknown:
                for task_id in unknown:
                    shown = task_id.encode("unicode_escape").decode()
                    print(
                        f"pikdav offline delete: no offline task has the id {shown}",
                        file=sys.stderr,
                    )
                return 1
        else:
            mount.offline.retry(args.id)
            print(f"started {args.id} again")
    except (PikPakError, MountError) as exc:
        problem = exc.problem if isinstance(exc, PikPakError) else str(exc)
        print(f"pikdav offline {args.action}: {problem}", file=sys.stderr)
        return 1
    return 0


def _phase(phase: str) -> str:
    return phase.removeprefix("PHASE_TYPE_").lower()


class JsonLines(logging.Formatter):
    """``--log-format json``: one JSON object per line. The message is the same text as in
    the text format, so what the log lines keep out (secrets) and escape stays so."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(logging, args.log_level.upper())
    handler = logging.StreamHandler()
    if args.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # Default: one line per request and what needs attention; -v adds every upstream call.
    logging.getLogger("wsgidav").setLevel(max(level, logging.WARNING))
    verbose = args.verbose or level == logging.DEBUG
    logging.getLogger("pikdav.pikpak").setLevel(logging.DEBUG if verbose else level)
    logging.getLogger("pikdav.emulator").setLevel(logging.WARNING)
    commands = {
        "emulator": run_emulator,
        "login": run_login,
        "serve": run_serve,
        "demo": run_demo,
        "check": run_check,
        "shares": run_shares,
        "hash-password": run_hash_password,
        "bans": run_bans,
        "offline": run_offline,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
