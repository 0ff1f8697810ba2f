"""Reading a YAML configuration file and checking its values, key by key.

What any section of the configuration needs: the file read and parsed (a key given twice is a
mistake, not a silent override), ``${NAME}`` references replaced from the environment
(``${NAME:-default}`` gives a default, ``$${`` a literal ``${``), and checks of shapes and
values whose every failure is a `ConfigError` naming the file, the key and the problem, e.g.
``config.yaml: mounts[1].download: must be one of redirect, proxy, auto (got 'redir')``.
Values of secret keys, and values that came from the environment, are never repeated in a
message. What the sections are, and their defaults, is `pikdav.config`'s business.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml

# Values of these keys are never repeated in an error message.
SECRET_KEYS = frozenset(
    {"password", "refresh_token", "password_hash", "token_store", "pass_code", "share", "redis"}
)


class ConfigError(ValueError):
    """A mistake in the configuration; the message is meant for the user as it is."""


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path`` (None when it is empty); ConfigError when it cannot be
    read or parsed."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{source}: cannot read the config file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: the config file is not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = e.problem or e.context or "cannot be parsed"
        raise ConfigError(f"{source}: {where}YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: YAML syntax error: {e}") from None


# --- YAML --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice (YAML would silently keep the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag != "tag:yaml.org,2002:str":
                continue  # merge keys (<<) and non-string keys: left to the SafeLoader
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


_REFERENCE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def split_url(text: str) -> SplitResult | None:
    """``text`` split as a URL, or None when Python cannot read it as one: an unclosed ``[``
    of an IPv6 address, a port that is not a number from 0 to 65535."""
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return None
    return parts


def join(path: str, key: str | int) -> str:
    """The path of ``key`` inside ``path``, as messages spell it: ``mounts[1].download``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def fields(path: str, data: Mapping[str, Any], defaults: Any) -> Any:
    """`key(name)` -> (key path, the value given or the default), for a section's getters."""

    def key(name: str) -> tuple[str, Any]:
        return join(path, name), data.get(name, getattr(defaults, name))

    return key


class Checker:
    """Checks values of one configuration (named ``source`` in messages); every method raises
    `ConfigError` at the first mistake."""

    def __init__(self, source: str, env: Mapping[str, str], base_dir: Path | None) -> None:
        self.source = source
        self.env = env
        self.base_dir = base_dir
        self.from_env: set[str] = set()  # values made by substitution: never repeated in errors

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(
            f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}"
        )

    def got(self, path: str, value: Any) -> str:
        if path.rpartition(".")[2] in SECRET_KEYS:
            return ""
        if isinstance(value, str) and value in self.from_env:
            return " (got a value from the environment)"
        text = repr(value)
        return f" (got {text[:60] + '...' if len(text) > 60 else text})"

    # -- environment --

    def substitute(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: self.substitute(v, join(path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, join(path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            value = _REFERENCE.sub(lambda m: self._expand(m, path), value)
            self.from_env.add(value)
        return value

    def _expand(self, match: re.Match[str], path: str) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise self.fail(
                path, "a '${' that is not a ${NAME} reference (write $${ for a literal ${)"
            )
        if name in self.env:
            return self.env[name]
        if default is not None:
            return default
        raise self.fail(
            path,
            f"the environment variable {name} is not set "
            f"(set it, or give a default: ${{{name}:-default}})",
        )

    # -- shapes --

    def mapping(self, path: str, value: Any, known: Iterable[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of keys to values{self.got(path, value)}")
        known = tuple(known)
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
                raise self.fail(join(path, str(key)), f"unknown key ({hint})")
        return value

    def named(self, path: str, value: Any, pattern: re.Pattern[str], rule: str) -> dict[str, Any]:
        """A mapping of names (validated by `pattern`) to sections."""
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of names to settings{self.got(path, value)}")
        for name in value:
            if not isinstance(name, str) or not pattern.fullmatch(name):
                raise self.fail(join(path, str(name)), f"a name may contain {rule} only")
        return value

    def items(self, path: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise self.fail(path, f"must be a list{self.got(path, value)}")
        return list(value)

    # -- scalars --

    def string(self, path: str, value: Any, *, optional: bool = False) -> Any:
        if value is None or (optional and value == ""):
            if optional:
                return None
            raise self.fail(path, "is required")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(path, f"must be a string{self.got(path, value)}")
        return str(value)

    def integer(self, path: str, value: Any, low: int, high: int | None = None) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be a whole number{self.got(path, value)}")
        if value < low or (high is not None and value > high):
            limits = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise self.fail(path, f"must be {limits}{self.got(path, value)}")
        return value

    def number(self, path: str, value: Any, low: float) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"must be a number{self.got(path, value)}")
        if value < low:
            raise self.fail(path, f"must be at least {low:g}{self.got(path, value)}")
        return float(value)

    def boolean(self, path: str, value: Any) -> bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false{self.got(path, value)}")
        return value

    def choice(self, path: str, value: Any, choices: Iterable[str]) -> str:
        choices = tuple(choices)
        if value not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)}{self.got(path, value)}")
        return value

    def strings(self, path: str, value: Any) -> tuple[str, ...]:
        values = self.items(path, value)
        out = tuple(self.string(join(path, i), v) for i, v in enumerate(values))
        for i, text in enumerate(out):
            if not text:
                raise self.fail(join(path, i), "must not be empty")
        return out

    def networks(
        self, path: str, value: Any
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        out = []
        for i, text in enumerate(self.strings(path, value)):
            try:
                out.append(ipaddress.ip_network(text))
            except ValueError as e:
                if "has host bits set" in str(e):
                    network = ipaddress.ip_network(text, strict=False)
                    problem = f"has host bits set (did you mean '{network}'?)"
                else:
                    problem = "is not an IP address or CIDR network such as 192.168.1.0/24"
                raise self.fail(join(path, i), f"{text!r} {problem}") from None
        return tuple(out)

    def size(self, path: str, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and (match := _SIZE.fullmatch(value.strip())):
            value = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
        elif isinstance(value, str) or isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                path, f"must be a size in bytes, or like '500M' or '10G'{self.got(path, value)}"
            )
        if value < 1:
            raise self.fail(path, f"must be at least 1 byte{self.got(path, value)}")
        return value

    def path(self, path: str, value: Any, *, must_be: str | None = None) -> Path | None:
        text = self.string(path, value, optional=True)
        if text is None:
            return None
        location = Path(text).expanduser()
        if self.base_dir is not None and not location.is_absolute():
            location = self.base_dir / location
        if must_be == "file" and not location.is_file():
            raise self.fail(path, f"no such file: {location}")
        if must_be == "folder" and not location.is_dir():
            raise self.fail(path, f"no such folder: {location}")
        return location

    def url(self, path: str, value: Any) -> str:
        text = self.string(path, value)
        parts = split_url(text)
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.fail(path, f"must be an http:// or https:// URL{self.got(path, value)}")
        return text.rstrip("/")
