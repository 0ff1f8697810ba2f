"""The config file: what a user sees when it is right, and when it is wrong."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from pathlib import Path

import pytest

from pikdav.config import ConfigError, load_config, parse_config
from pikdav.dav.auth import hash_password, verify_password

ROOT = Path(__file__).resolve().parent.parent
HASH = hash_password("kodi")


def minimal(**sections) -> dict:
    data = {
        "accounts": {"main": {"username": "alice@example.com", "password": "pw"}},
        "mounts": [{"name": "pikpak", "account": "main"}],
        "users": {"alice": {"password_hash": HASH}},
    }
    data.update(sections)
    return data


def error_of(data, env=None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "config.yaml", env or {})
    return str(caught.value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --- right -------------------------------------------------------------------------------------


def test_the_example_config_parses(monkeypatch):
    monkeypatch.setenv("PIKPAK_PASSWORD", "hunter2")
    config = load_config(ROOT / "config.example.yaml")
    account = config.account_for("pikpak")
    assert (account.username, account.password, account.platform) == (
        "alice@example.com",
        "hunter2",
        "web",
    )
    assert [m.name for m in config.mounts] == ["pikpak", "movies"]
    assert config.server.max_upload_size == 50 * 2**30
    assert config.mount("pikpak").public_ip == ipaddress.ip_address("203.0.113.7")
    assert config.mount("movies").read_only
    assert verify_password("correct horse battery staple", config.users["alice"].password_hash)
    assert config.users["kodi"].mounts == ("movies",)
    assert config.users["alice"].admin and not config.users["kodi"].admin
    assert config.token_path("main") == Path.home() / ".local/state/pikdav/tokens/main.json"


def test_the_example_config_documents_every_key():
    text = (ROOT / "config.example.yaml").read_text()
    keys = set(re.findall(r"^\s*-?\s*([a-z_]+):", text, re.MULTILINE))
    assert keys >= {
        "host", "port", "tls_cert", "tls_key", "threads", "trusted_proxies", "anonymous",
        "anonymous_on_public_bind", "max_upload_size", "temp_dir", "login_failures", "max",
        "window", "ban", "state_dir", "username", "password", "refresh_token", "platform",
        "token_store", "user_api", "drive_api", "ca_cert", "name", "account", "root_folder_id",
        "download", "redirect_networks", "public_ip", "force_proxy_user_agents",
        "force_redirect_user_agents", "use_trash", "read_only", "listing_ttl", "password_hash",
        "mounts", "api_domain", "proxy", "link", "download_domain", "cdn_node", "cdn_nodes",
        "admin", "metrics_addr", "offline_folder", "notify", "webhook", "redis",
        "stream_connections", "cdn_connections", "stream_cache", "memory_budget",
    }  # fmt: skip


@pytest.mark.parametrize(
    "url", ["redis://db:6379/0", "rediss://:pw@db:6380/1", "unix:///run/redis/redis.sock"]
)
def test_one_redis_setting_becomes_every_accounts_token_store(url):
    data = minimal(redis=url)
    data["accounts"]["other"] = {"username": "bob@example.com", "token_store": "memory"}
    config = parse_config(data, "config.yaml", {})
    assert config.redis == url
    assert config.accounts["main"].token_store == url  # the shared Redis by default
    assert config.accounts["other"].token_store == "memory"  # an account's own choice stays
    assert url not in repr(config)


def test_without_redis_an_account_keeps_its_token_file():
    config = parse_config(minimal(), "config.yaml", {})
    assert config.redis is None
    assert config.accounts["main"].token_store is None


def test_a_redis_setting_that_is_no_redis_url_is_a_clear_error_without_its_value():
    message = error_of(minimal(redis="http://:secret@db:6379"))
    assert message.startswith("config.yaml: redis: must be a redis://host:port/db")
    assert "secret" not in message


def test_stream_settings_have_defaults_bounds_and_an_off():
    config = parse_config(minimal(), "c", {})
    assert config.mounts[0].stream_connections == 8
    assert config.accounts["main"].cdn_connections == 16
    assert config.server.stream_cache == 64 << 20
    data = minimal(server={"stream_cache": "16M"})
    data["mounts"][0]["stream_connections"] = 1
    config = parse_config(data, "c", {})
    assert config.server.stream_cache == 16 << 20 and config.mounts[0].stream_connections == 1
    assert parse_config(minimal(server={"stream_cache": 0}), "c", {}).server.stream_cache == 0
    data = minimal()
    data["mounts"][0]["stream_connections"] = 9  # PikPak serves 8 per link
    assert "mounts[0].stream_connections" in error_of(data)
    data = minimal()
    data["accounts"]["main"]["cdn_connections"] = 0
    assert "accounts.main.cdn_connections" in error_of(data)


def test_the_memory_budget_is_a_size_of_at_least_one_mib():
    assert parse_config(minimal(), "c", {}).server.memory_budget == 64 << 20
    config = parse_config(minimal(server={"memory_budget": "48M"}), "c", {})
    assert config.server.memory_budget == 48 << 20
    for wrong in (0, "512K", "lots"):
        assert "server.memory_budget" in error_of(minimal(server={"memory_budget": wrong}))


def test_defaults():
    config = parse_config(minimal(), "config.yaml", {})
    server, mount = config.server, config.mounts[0]
    assert (server.host, server.port, server.threads) == ("127.0.0.1", 8080, 64)
    assert (server.anonymous, server.max_upload_size, server.tls_cert) == (False, None, None)
    assert (server.login_failures.max, server.login_failures.window) == (5, 300)
    assert server.login_failures.ban == 600
    assert config.state_dir == Path.home() / ".local/state/pikdav"
    assert (mount.download, mount.use_trash, mount.read_only, mount.listing_ttl) == (
        "auto",
        True,
        False,
        60,
    )
    assert mount.force_proxy_user_agents == (
        "Microsoft-WebDAV-MiniRedir",
        "WebDAVFS",
        "neon/",
        "Lavf/",
    )
    assert config.accounts["main"].user_api == "https://user.mypikpak.com"
    assert config.users["alice"].mounts == ("*",)
    assert config.auth_settings().mounts == ("pikpak",)


def test_environment_variables_are_substituted():
    data = minimal(server={"port": "${PORT:-9000}", "host": "${HOST:-127.0.0.1}"})
    data["accounts"]["main"]["password"] = "${PIKPAK_PASSWORD}"
    data["accounts"]["main"]["username"] = "${PIKPAK_USER}@example.com"
    data["mounts"][0]["root_folder_id"] = "$${not a variable}"
    config = parse_config(data, "config.yaml", {"PIKPAK_PASSWORD": "s3cret", "PIKPAK_USER": "bo"})
    account = config.accounts["main"]
    assert (account.username, account.password) == ("bo@example.com", "s3cret")
    assert config.server.port == 9000  # a default, then read as a number
    assert config.mounts[0].root_folder_id == "${not a variable}"
    assert parse_config(data, "c", {"PORT": "81", "PIKPAK_PASSWORD": "", "PIKPAK_USER": "x"})


def test_secrets_stay_out_of_repr():
    config = parse_config(minimal(), "config.yaml", {})
    assert "pw" not in repr(config.accounts["main"]).replace("password", "")
    assert HASH not in repr(config)


def test_sizes_and_relative_paths(tmp_path):
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "cert.pem").write_text("cert")
    (tmp_path / "tls" / "key.pem").write_text("key")
    path = write(
        tmp_path,
        f"""\
        server:
          tls_cert: tls/cert.pem
          tls_key: tls/key.pem
          max_upload_size: 500M
        accounts: {{main: {{refresh_token: r1}}}}
        mounts: [{{name: pikpak}}]   # the only account is the default
        users: {{alice: {{password_hash: "{HASH}"}}}}
        """,
    )
    config = load_config(path)
    assert config.server.tls_cert == tmp_path / "tls" / "cert.pem"
    assert config.server.max_upload_size == 500 * 2**20
    assert config.mounts[0].account == "main"
    assert config.accounts["main"].username is None


def test_anonymous_without_users_on_loopback():
    config = parse_config(minimal(server={"anonymous": True}, users=None), "config.yaml", {})
    assert config.server.anonymous
    assert config.users == {}


# --- wrong -------------------------------------------------------------------------------------


def test_a_typo_in_a_key_is_an_error_with_a_suggestion():
    assert error_of(minimal(server={"prot": 8080})) == (
        "config.yaml: server.prot: unknown key (did you mean 'port'?)"
    )
    assert "config.yaml: mounts[0].redirect_network: unknown key (did you mean" in error_of(
        minimal(mounts=[{"name": "pikpak", "redirect_network": []}])
    )
    assert error_of({**minimal(), "user": {}}).startswith("config.yaml: user: unknown key")


def test_a_bad_choice_names_the_choices_and_what_was_given():
    data = minimal(mounts=[{"name": "a"}, {"name": "b", "download": "redir"}])
    assert error_of(data) == (
        "config.yaml: mounts[1].download: must be one of redirect, proxy, auto (got 'redir')"
    )
    data = minimal()
    data["accounts"]["main"]["platform"] = "ios"
    assert "accounts.main.platform: must be one of web, android, pc (got 'ios')" in error_of(data)


def test_a_missing_environment_variable_names_key_and_variable_and_nothing_secret():
    data = minimal()
    data["accounts"]["main"]["refresh_token"] = "${PIKPAK_REFRESH_TOKEN}"
    data["accounts"]["main"]["password"] = "${PIKPAK_PASSWORD}"
    message = error_of(data, env={"PIKPAK_REFRESH_TOKEN": "tok-very-secret"})
    assert message == (
        "config.yaml: accounts.main.password: the environment variable PIKPAK_PASSWORD is not"
        " set (set it, or give a default: ${PIKPAK_PASSWORD:-default})"
    )
    assert "tok-very-secret" not in message


def test_values_from_the_environment_are_not_repeated_in_errors():
    message = error_of(minimal(server={"port": "${SECRET}"}), env={"SECRET": "hunter2"})
    assert message == (
        "config.yaml: server.port: must be a whole number (got a value from the environment)"
    )


def test_secret_values_are_not_repeated_in_errors():
    data = minimal()
    data["accounts"]["main"]["password"] = ["hunter2"]
    message = error_of(data)
    assert message == "config.yaml: accounts.main.password: must be a string"
    data = minimal(users={"alice": {"password_hash": "hunter2"}})
    message = error_of(data)
    assert message.startswith("config.yaml: users.alice.password_hash: is not a hash pikdav can")
    assert "hunter2" not in message


def test_a_yaml_syntax_error_gives_the_line(tmp_path):
    path = write(
        tmp_path,
        """\
        server:
          port: 8080
          host: [127.0.0.1
        mounts: []
        """,
    )
    with pytest.raises(ConfigError, match=r"config\.yaml: line 4, column \d+: YAML syntax error"):
        load_config(path)


def test_a_key_given_twice_is_an_error(tmp_path):
    path = write(
        tmp_path,
        """\
        server:
          port: 8080
          port: 8081
        """,
    )
    with pytest.raises(ConfigError, match=r"line 3, column 3: .*'port' appears twice"):
        load_config(path)


def test_a_missing_or_empty_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the config file: No such"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(write(tmp_path, ""))


def test_anonymous_on_a_public_address_is_refused_unless_confirmed():
    data = minimal(server={"host": "0.0.0.0", "anonymous": True})
    message = error_of(data)
    assert message.startswith(
        "config.yaml: server.anonymous: anonymous access on host '0.0.0.0' would let anyone"
    )
    assert "anonymous_on_public_bind: true" in message
    data["server"]["anonymous_on_public_bind"] = True
    assert parse_config(data, "config.yaml", {}).server.anonymous
    assert parse_config(minimal(server={"host": "::1", "anonymous": True}), "c", {})


def test_references_to_unknown_mounts_and_accounts():
    data = minimal(users={"bob": {"password_hash": HASH, "mounts": ["pikpak", "pikpk"]}})
    assert error_of(data) == (
        "config.yaml: users.bob.mounts[1]: no mount is named 'pikpk' (mounts: pikpak;"
        " '*' means all)"
    )
    data = minimal(mounts=[{"name": "pikpak", "account": "mian"}])
    assert error_of(data) == (
        "config.yaml: mounts[0].account: no account is named 'mian' (accounts: main)"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"server": {"port": 70000}}, "server.port: must be from 0 to 65535 (got 70000)"),
        ({"server": {"port": "http"}}, "server.port: must be a whole number (got 'http')"),
        ({"server": {"threads": 0}}, "server.threads: must be from 1 to 1024 (got 0)"),
        ({"server": {"anonymous": "yes please"}}, "server.anonymous: must be true or false"),
        ({"server": {"max_upload_size": "ten gigs"}}, "server.max_upload_size: must be a size"),
        ({"server": {"tls_cert": "/nonexistent/cert.pem"}}, "server.tls_cert: no such file"),
        (
            {"server": {"trusted_proxies": ["10.0.0.1/8"]}},
            "trusted_proxies[0]: '10.0.0.1/8' has host bits set (did you mean '10.0.0.0/8'?)",
        ),
        (
            {"server": {"login_failures": {"max": -1}}},
            "server.login_failures.max: must be at least 0 (got -1)",
        ),
        (
            {"mounts": [{"name": "p", "redirect_networks": ["lan"]}]},
            "mounts[0].redirect_networks[0]: 'lan' is not an IP address or CIDR network",
        ),
        ({"mounts": [{"name": "p", "public_ip": "me"}]}, "mounts[0].public_ip: must be an IP"),
        ({"mounts": [{"name": "my files"}]}, "mounts[0].name: may contain letters, digits"),
        (
            {"mounts": [{"name": "Films"}, {"name": "films"}]},
            "mounts[1].name: 'films' is already the name of mounts[0]",
        ),
        ({"mounts": []}, "mounts: at least one mount is required"),
        ({"mounts": {"name": "pikpak"}}, "mounts: must be a list"),
        ({"accounts": {}}, "accounts: at least one PikPak account is required"),
        ({"accounts": {"../main": {"username": "a"}}}, "accounts.../main: a name may contain"),
        ({"accounts": {"main": {"password": "pw"}}}, "accounts.main.username: is required"),
        (
            {"accounts": {"main": {"username": "a", "token_store": "mysql://x"}}},
            "accounts.main.token_store: must be null (a file in state_dir/tokens), a redis://",
        ),
        ({"accounts": {"main": {"username": "a", "user_api": "ftp://x"}}}, "must be an http://"),
        ({"users": None}, "users: at least one user is required (or set server.anonymous: true)"),
        ({"users": {"a:b": {"password_hash": HASH}}}, "users.a:b: a name may contain"),
        ({"users": {"alice": {}}}, "users.alice.password_hash: is required"),
    ],
)
def test_mistakes_are_named(change, expected):
    data = minimal(**change)
    assert expected in error_of(data)
    assert error_of(data).startswith("config.yaml: ")


def test_tls_cert_and_key_go_together(tmp_path):
    (tmp_path / "cert.pem").write_text("cert")
    data = minimal(server={"tls_cert": str(tmp_path / "cert.pem")})
    assert error_of(data) == (
        "config.yaml: server.tls_key: tls_cert and tls_key go together: give both or neither"
    )


def test_network_keys_of_accounts_and_mounts():
    data = minimal()
    data["accounts"]["main"] |= {"api_domain": "mypikpak.net", "proxy": "socks5h://u:pw@h:1080"}
    data["mounts"][0] |= {
        "download_domain": "pikpak.me",
        "cdn_node": "auto",
        "cdn_nodes": ["dl-a10b-0999", "node.example.org"],
        "link": "media",
    }
    config = parse_config(data, "config.yaml", {})
    account, mount = config.accounts["main"], config.mounts[0]
    assert (account.user_api, account.drive_api) == (
        "https://user.mypikpak.net",
        "https://api-drive.mypikpak.net",
    )
    assert account.proxy == "socks5h://u:pw@h:1080" and "u:pw" not in repr(account)
    assert (mount.download_domain, mount.cdn_node, mount.link) == ("pikpak.me", "auto", "media")
    assert mount.cdn_nodes == ("dl-a10b-0999", "node.example.org")
    # user_api and drive_api stay for full URLs, and win over api_domain
    data["accounts"]["main"]["user_api"] = "https://pikpak.example.org:8443"
    assert (
        parse_config(data, "c", {}).accounts["main"].user_api == "https://pikpak.example.org:8443"
    )
    data["mounts"][0]["cdn_node"] = False  # what YAML makes of `cdn_node: off`
    assert parse_config(data, "c", {}).mounts[0].cdn_node == "off"
    default = parse_config(minimal(), "c", {}).mounts[0]
    assert (default.download_domain, default.cdn_node, default.link) == ("keep", "off", "original")
    assert parse_config(minimal(), "c", {}).accounts["main"].proxy is None


@pytest.mark.parametrize(
    "where, key, value, says",
    [
        ("account", "api_domain", "https://mypikpak.net", "must be a domain name"),
        ("mount", "download_domain", "not a domain", "must be a domain name"),
        ("mount", "cdn_node", "dl_a10b 0622", "must be auto, off, a node"),
        ("mount", "link", "transcode", "must be one of original, media, transcoded"),
    ],
)
def test_bad_network_values_say_what_is_wanted(where, key, value, says):
    data = minimal()
    target = data["accounts"]["main"] if where == "account" else data["mounts"][0]
    target[key] = value
    message = error_of(data)
    assert says in message and key in message


def test_metrics_addr_and_offline_folder_are_checked():
    assert parse_config(
        minimal(server={"metrics_addr": "[::1]:9100"}), "c"
    ).server.metrics_addr == (
        "::1",
        9100,
    )
    for bad in (":9100", "localhost", "127.0.0.1:http", "127.0.0.1:70000"):
        assert "server.metrics_addr: must be host:port" in error_of(
            minimal(server={"metrics_addr": bad})
        )
    mount = {"name": "pikpak", "account": "main", "offline_folder": "/Downloads/Offline/"}
    assert (
        parse_config(minimal(mounts=[mount]), "c").mounts[0].offline_folder == "Downloads/Offline"
    )
    for bad in ("/", "a/../b", "a//b"):
        mount["offline_folder"] = bad
        assert "mounts[0].offline_folder: must be a folder path" in error_of(
            minimal(mounts=[mount])
        )
    own = error_of(minimal(mounts=[{"name": "_PikDAV", "account": "main"}]))
    assert "mounts[0].name: _pikdav is pikdav's own (the status page)" in own
    user = {"password_hash": HASH, "admin": "yes"}
    assert "users.alice.admin" in error_of(minimal(users={"alice": user}))


def test_a_webhook_is_an_http_url_never_repeated_in_errors():
    assert parse_config(minimal(notify={"webhook": "https://ntfy.sh/t"}), "c").notify.webhook
    assert parse_config(minimal(), "c").notify.webhook is None
    message = error_of(minimal(notify={"webhook": "ftp://secret-token@example.org/"}))
    assert "notify.webhook: must be an http:// or https:// URL" in message
    assert "secret-token" not in message
    assert "secret" not in repr(parse_config(minimal(notify={"webhook": "https://x/secret"}), "c"))


def test_server_keys_that_keep_room_for_everyone():
    server = parse_config(minimal(), "config.yaml", {}).server
    assert (server.max_threads, server.requests_per_user, server.requests_per_address) == (
        256,
        64,
        128,
    )
    assert server.send_timeout == 300
    text = (ROOT / "config.example.yaml").read_text()
    for key in ("max_threads", "requests_per_user", "requests_per_address", "send_timeout"):
        assert re.search(rf"^  {key}: ", text, re.MULTILINE), key
    data = minimal(server={"threads": 8, "max_threads": 4})
    assert error_of(data) == "config.yaml: server.max_threads: must be from 8 to 1024 (got 4)"
    data = minimal(server={"requests_per_user": 0})
    assert error_of(data) == "config.yaml: server.requests_per_user: must be at least 1 (got 0)"
    data = minimal(server={"send_timeout": "forever"})
    assert "server.send_timeout" in error_of(data)
