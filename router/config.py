"""Configuration: ``config.yaml`` with every key overridable from the environment.

Environment names are ``HERALD_`` + the key, nested keys joined by ``__``:
``HERALD_DATABASE_URL``, ``HERALD_SMTP__HOST``, ``HERALD_DELIVERY__MAX_ATTEMPTS``.
The file is found at ``$HERALD_CONFIG`` or ``./config.yaml``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from router.errors import ConfigError
from router.outbound import parse_entry

MAX_ACCESS_TOKEN_DAYS = 14


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
    # public (router.outbound): your own push service, local test servers
    allow: list[str] = Field(default_factory=list)

    @field_validator("allow")
    @classmethod
    def _entries_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_entry(text)
        return value


class DeliveryConfig(BaseModel):
    max_attempts: int = 8
    backoff_min_s: float = 2.0
    backoff_max_s: float = 600.0
    batch_size: int = 200
    sweep_interval_s: float = 30.0
    sweep_after_s: float = 120.0  # pending this long without a message: enqueue again
    lease_s: float = 120.0  # a claimed batch belongs to its worker this long; adapters stop
    #                         starting new sends after half of it (leftovers retry)
    presence_window_s: float = 5.0
    route_batch: int = 100  # events per route transaction (a job tops its batch up)
    route_concurrency: int = 2  # route jobs running at once per worker process
    idle_poll_ms: int = 100  # longest wait of an idle worker between queue polls; an
    #                          enqueue wakes it at once (workers.broker.WakingRedisBroker)


class ApiConfig(BaseModel):
    max_body_bytes: int = 5_000_000
    publish_rate_per_s: float = 2000.0
    publish_burst: int = 5000
    max_ws_per_user: int = 10
    signing_grace_s: int = 86400
    metrics_token: str = ""  # when set, /metrics needs `Authorization: Bearer <token>`


class Settings(BaseSettings):
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
    links: dict[str, str] = Field(
        default_factory=lambda: {
            "ticket": "https://app.example.com/tickets/{id}",
            "task": "https://app.example.com/tasks/{id}",
            "video_session": "https://app.example.com/video-sessions/{id}",
            "code": "https://app.example.com/codes/{id}",
            "device": "https://app.example.com/devices/{id}",
        }
    )
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


def load_settings(**overrides: object) -> Settings:
    """Load and validate; a mistake raises ConfigError naming the key and the fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise ConfigError(
            "configuration is invalid (config.yaml or HERALD_* environment):\n  "
            + "\n  ".join(lines)
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
