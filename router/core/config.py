"""Configuration: ``config.yaml`` with every key overridable from the environment.

Environment names are ``HERALD_`` + the key, nested keys joined by ``__``:
``HERALD_DATABASE_URL``, ``HERALD_SMTP__HOST``, ``HERALD_DELIVERY__MAX_ATTEMPTS``.
The file is found at ``$HERALD_CONFIG`` or ``./config.yaml``.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from router.core.enums import SubjectKind
from router.core.errors import ConfigError
from router.core.outbound import parse_entry

MAX_ACCESS_TOKEN_DAYS = 14
DEMO_SUBJECT = "/demo/subject/"  # the page standing in for the host application (demo)


class SmtpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1025
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0
    from_addr: str = "Herald <herald@localhost>"
    reply_to: str = ""
    message_id_domain: str = "herald.localhost"


class PushConfig(BaseModel):
    vapid_private_key: str = ""
    vapid_public_key: str = ""
    vapid_subject: str = "mailto:ops@herald.localhost"
    default_ttl_s: int = 86400
    timeout_s: float = 10.0
    concurrency: int = 16  # push requests in flight per worker process


class FcmConfig(BaseModel):
    service_account_file: str = ""
    # the key JSON itself (HERALD_FCM__SERVICE_ACCOUNT_JSON); wins over service_account_file
    service_account_json: str = ""
    base_url: str = "https://fcm.googleapis.com"
    timeout_s: float = 10.0


class OutboundConfig(BaseModel):
    # hosts, host:port, IP addresses or networks Herald may send to although they are not
    # public (router.core.outbound): your own push service, local test servers
    allow: list[str] = Field(default_factory=list)

    @field_validator("allow")
    @classmethod
    def _entries_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_entry(text)
        return value


class DeliveryConfig(BaseModel):
    # retries: exponential backoff up to backoff_max_s; a delivery gives up after
    # max_attempts or once retry_window_s after it was created (defaults: ~4 h)
    max_attempts: int = 16
    backoff_min_s: float = 2.0
    backoff_max_s: float = 3600.0
    retry_window_s: float = 14_400.0
    batch_size: int = 200
    sweep_interval_s: float = 30.0
    sweep_after_s: float = 120.0  # pending this long without a message: enqueue again
    lease_s: float = 120.0  # a claimed batch belongs to its worker this long; adapters stop
    #                         starting new sends after half of it (leftovers retry)
    presence_window_s: float = 5.0
    route_batch: int = 100  # events per route transaction (a job tops its batch up)
    route_concurrency: int = 2  # route jobs running at once per worker process
    heartbeat_s: float = 2.0  # each worker process beats this often
    dead_after_s: float = 10.0  # a worker silent this long is dead: its claims are released
    lost_after_s: float = 10.0  # pending, due and unclaimed this long with its queue empty:
    #                             the message was lost, enqueue it again
    # per-channel circuit breaker (shared by all workers): after breaker_failures transient
    # failures in a row it opens for breaker_cooldown_s (doubling up to breaker_cooldown_max_s
    # while the provider stays down); deliveries are held, not spent, then one probe goes
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    breaker_cooldown_max_s: float = 300.0
    breaker_probe_s: float = 15.0  # half-open: others hold this long for the probe's answer
    idle_poll_ms: int = 15000  # longest wait of an idle Redis consumer between polls; an
    #                           enqueue wakes it at once, a delayed message when due
    #                           (workers.broker.WakingRedisBroker)


class ApiConfig(BaseModel):
    max_body_bytes: int = 5_000_000
    publish_rate_per_s: float = 2000.0
    publish_burst: int = 5000
    max_ws_per_user: int = 10
    signing_grace_s: int = 86400
    metrics_token: str = ""  # when set, /metrics needs `Authorization: Bearer <token>`
    # longest wait on Redis while publishing (rate limit, enqueue); past it the limiter
    # lets the event through and the sweeper enqueues it: the database commit is the answer
    redis_timeout_s: float = 0.2
    # fair lanes: a tenant that published this many events or more in about the last
    # bulk_lane_window_s (each weighed down by e^(-age/window)) routes on the bulk lane, so
    # its backlog never delays other tenants' live notifications (a batch of 500, or ~50
    # events/s sustained); 0 turns the lanes off
    bulk_lane_after: int = Field(default=500, ge=0)
    bulk_lane_window_s: float = Field(default=10.0, gt=0)


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERALD_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = "sqlite:///herald.db"
    broker_url: str = ""  # empty: in-process broker inside `herald serve`
    redis_url: str = ""  # pub/sub + rate limits; defaults to broker_url when that is redis
    rules_path: str = "rules"
    public_url: str = "http://127.0.0.1:8000"
    default_language: str = "en"
    access_token_days: int = MAX_ACCESS_TOKEN_DAYS
    # deep links per subject kind ({id}, {number}); a kind left out points at
    # {public_url}/demo/subject/<kind>/{id}, which production refuses (see _links_for_production)
    links: dict[str, str] = Field(default_factory=dict)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    fcm: FcmConfig = Field(default_factory=FcmConfig)
    outbound: OutboundConfig = Field(default_factory=OutboundConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"

    @field_validator("access_token_days")
    @classmethod
    def _token_days_bounded(cls, value: int) -> int:
        if not 1 <= value <= MAX_ACCESS_TOKEN_DAYS:
            raise ValueError(
                f"access_token_days must be between 1 and {MAX_ACCESS_TOKEN_DAYS} "
                f"(DESIGN §4: links live at most 14 days); got {value}"
            )
        return value

    @model_validator(mode="after")
    def _links_for_production(self) -> Config:
        """Fill the kinds without a link from public_url; refuse a production setup whose
        mails would carry loopback or demo-page links while Herald itself is public."""
        self.links = {**demo_links(self.public_url), **self.links}
        if self.production and not is_loopback(self.public_url):
            wrong = [kind for kind, link in self.links.items() if not host_link(link)]
            if wrong:
                raise ValueError(links_problem(wrong, self.links))
        return self

    @property
    def production(self) -> bool:
        """Workers apart (a broker) or PostgreSQL: not the embedded demo."""
        return bool(self.broker_url) or self.database_url.startswith("postgres")

    @property
    def pubsub_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return self.broker_url if self.broker_url.startswith("redis") else ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("HERALD_CONFIG", "config.yaml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.exists():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def demo_links(public_url: str) -> dict[str, str]:
    base = public_url.rstrip("/")
    return {kind.value: f"{base}{DEMO_SUBJECT}{kind.value}/{{id}}" for kind in SubjectKind}


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_link(link: str) -> bool:
    """A link that can lead a reader somewhere: not loopback, not Herald's demo page."""
    return not is_loopback(link) and DEMO_SUBJECT not in urlsplit(link).path


def links_problem(wrong: list[str], links: dict[str, str]) -> str:
    first = wrong[0]
    return (
        f"links.{first} is {links[first]!r}: notifications would send readers to "
        f"{'the demo page' if DEMO_SUBJECT in links[first] else 'a loopback address'} "
        f"(also: {', '.join('links.' + k for k in wrong[1:]) or 'no other key'}). "
        f"Set each to the host application's page, e.g. links.{first}: "
        f"https://app.example.com/{first}s/{{id}} in config.yaml or "
        f"HERALD_LINKS__{first.upper()}"
    )


def load_config(**overrides: object) -> Config:
    """Load and validate; a mistake raises ConfigError naming the key and the fix."""
    try:
        return Config(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_problem(err) for err in exc.errors()]
        raise ConfigError(
            "configuration is invalid (config.yaml or HERALD_* environment):\n  "
            + "\n  ".join(lines)
        ) from None


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@lru_cache(maxsize=1)
def get_config() -> Config:
    return load_config()
