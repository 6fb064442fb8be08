"""The server's settings: one frozen dataclass, defaults from the environment, passed to worker processes as JSON."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qa.answer.llm.client import KEY_ENV as LLM_KEY_ENV
from qa.answer.llm.client import MODEL_ENV as LLM_MODEL_ENV
from qa.answer.llm.client import URL_ENV as LLM_URL_ENV
from qa.answer.llm.client import LLMSettings
from qa.core.errors import SettingsError
from qa.core.settings import default_index_dir
from qa.index.stores import STORE_ENV, Location, locate

MAX_BODY_BYTES = 64 * 1024
WEB_ENV = "QA_WEB_DIR"
ADMIN_KEY_ENV = "QA_ADMIN_KEY"
RATE_LIMIT_ENV = "QA_RATE_LIMIT"
SETTINGS_ENV = "QA_SERVE_SETTINGS"  # internal: how `qa serve --workers N` hands the settings to its workers
RATE_UNITS = ("second", "minute", "hour", "day")
REQUEST_TIMEOUT_ENV = "QA_REQUEST_TIMEOUT"
REQUEST_TIMEOUT = 10.0  # seconds for a client to send a request's headers and body (slowloris); answers may take longer
MAX_HEADER_BYTES = 64 * 1024  # request line and headers together; a browser sends ~1 KB
MAX_CONNECTIONS = 500  # open connections and running requests; beyond them uvicorn answers 503
WORKER_WATCH_SECONDS = 1.0  # with --workers N every worker watches CURRENT this often, so a reload reaches all
BASE_URL_ENV = "QA_BASE_URL"
ALLOWED_HOSTS_ENV = "QA_ALLOWED_HOSTS"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")  # always this server's own names
ANY_HOST = "*"


def default_web_dir() -> Path:
    """web/ beside the package (editable install or checkout), else installed as data files."""
    candidates = [Path(os.environ[WEB_ENV])] if os.environ.get(WEB_ENV) else []
    root = Path(__file__).resolve().parents[2]
    candidates += [root / "web", Path(sys.prefix) / "share" / "kamerbrieven-qa" / "web"]
    for candidate in candidates:
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError(f"cannot find the web/ folder (templates and static files); set ${WEB_ENV}")


def parse_rate_limit(value: str) -> tuple[str, int]:
    """'60/minute' -> ('minute', 60); a bad value is an error at start-up, not a silent no-limit."""
    count, _, unit = value.strip().partition("/")
    unit = unit.strip().lower().removesuffix("s")
    if not count.strip().isdigit() or int(count) < 1 or unit not in RATE_UNITS:
        raise SettingsError(f"rate limit {value!r}: expected N/unit with unit one of {', '.join(RATE_UNITS)}, e.g. 60/minute")
    return unit, int(count)


def parse_hosts(value: str | Sequence[str]) -> tuple[str, ...]:
    """'a.example, B.example' (or a list) -> ('a.example', 'b.example'): host names only, lower case, no port."""
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(item) for item in value]
    hosts = tuple(dict.fromkeys(item.strip().lower().strip("[]") for item in items if item.strip()))
    for host in hosts:
        if host != ANY_HOST and not _HOST_NAME.fullmatch(host):
            raise SettingsError(f"allowed host {host!r}: expected a host name or address without scheme or port, e.g. kamerbrieven.example.nl")
    return hosts


def check_base_url(value: str) -> str:
    """'https://kamerbrieven.example.nl/' -> without the final '/'; a typo is an error at start-up, not wrong links."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(f"base URL {value!r}: expected the site's address, e.g. https://kamerbrieven.example.nl")
    return value.strip().rstrip("/")


# What a host is, for the allowed hosts here and the Host header (qa/server/security.py): a name, or an IP address
# (IPv6 in brackets in a header). Case is folded by the callers.
HOST_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}"
IP_ADDRESS = r"[0-9A-Fa-f:.]{2,45}"
_HOST_NAME = re.compile(f"{HOST_NAME}|{IP_ADDRESS}")


@dataclass(frozen=True)
class Settings:
    index_dir: Path = field(default_factory=default_index_dir)
    # Where the index is (qa.index.locate): None/"local" the index_dir, or milvus-lite:PATH, milvus://HOST:PORT.
    # index_dir keeps the user data (feedback, saved questions) either way.
    store: str | None = field(default_factory=lambda: os.environ.get(STORE_ENV) or None)
    model: str | None = None  # None: the model the index was built with
    build_sample: bool = True  # no index yet: build one from the bundled sample letters
    web_dir: Path = field(default_factory=default_web_dir)
    max_body_bytes: int = MAX_BODY_BYTES
    debug: bool = False
    admin_key: str | None = field(default_factory=lambda: os.environ.get(ADMIN_KEY_ENV) or None)  # None: admin API off
    rate_limit: str | None = field(default_factory=lambda: os.environ.get(RATE_LIMIT_ENV) or None)  # "60/minute"; None: off
    watch_seconds: float = 0.0  # > 0: poll the index's CURRENT pointer and reload when it changes
    request_timeout: float = field(default_factory=lambda: float(os.environ.get(REQUEST_TIMEOUT_ENV) or REQUEST_TIMEOUT))
    workers: int = 1
    # With workers > 1: a folder the workers share for the rate limit's counts and for who serves which generation.
    state_dir: Path | None = None
    # A chat model for generated answers (issue 13); None: extractive answers only. The key is never shown (repr=False).
    llm_url: str | None = field(default_factory=lambda: os.environ.get(LLM_URL_ENV) or None)
    llm_model: str | None = field(default_factory=lambda: os.environ.get(LLM_MODEL_ENV) or None)
    llm_api_key: str | None = field(default_factory=lambda: os.environ.get(LLM_KEY_ENV) or None, repr=False)
    llm_timeout: float | None = None  # seconds to wait for the model's first (and every next) byte; None: $QA_LLM_TIMEOUT or 90
    # Where the site is, for the links that must be absolute (Atom feeds), e.g. https://kamerbrieven.example.nl;
    # None: the request's own Host, when it is one of `host_names()` (never whatever a client sends, issue 29).
    base_url: str | None = field(default_factory=lambda: os.environ.get(BASE_URL_ENV) or None)
    # Host names this server answers to besides loopback and the base URL's (the admin API, links, cross-site checks); "*": any.
    allowed_hosts: tuple[str, ...] = field(default_factory=lambda: parse_hosts(os.environ.get(ALLOWED_HOSTS_ENV, "")))

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", parse_hosts(self.allowed_hosts))  # also a JSON list from a worker's settings
        if self.base_url:
            object.__setattr__(self, "base_url", check_base_url(self.base_url))
        if self.rate_limit:
            parse_rate_limit(self.rate_limit)  # a typo is an error now, not a server without a limit
        self.llm()  # a bad URL is an error at start-up
        self.location()  # so is a malformed store

    def location(self) -> Location:
        """The index's store."""
        return locate(self.index_dir, self.store or "local")

    def llm(self) -> LLMSettings | None:
        """The chat model's settings, or None when no model server is configured."""
        return LLMSettings.from_env(self.llm_url, self.llm_model, self.llm_api_key, self.llm_timeout) if self.llm_url else None

    def host_names(self) -> frozenset[str]:
        """The names a Host (or Origin) header may give for this server: loopback, the base URL's, the allowed ones."""
        own = urlsplit(self.base_url).hostname if self.base_url else None
        return frozenset((*LOOPBACK_HOSTS, *self.allowed_hosts, *([own] if own else [])))

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON values, so a worker process runs with exactly these settings."""
        return {name: str(value) if isinstance(value, Path) else value for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        paths = {item.name for item in fields(cls) if "Path" in str(item.type)}  # from the annotations: a new field needs no edit here
        known = {item.name for item in fields(cls)}
        given: dict[str, Any] = {
            name: Path(value) if name in paths and value is not None else value for name, value in values.items() if name in known
        }
        return cls(**given)
