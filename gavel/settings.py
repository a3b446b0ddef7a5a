"""Settings from ``GAVEL_*`` environment variables, validated at start-up.

Sections map onto variable names: ``GAVEL_DATABASE_URL`` is ``database.url``,
``GAVEL_KAFKA_BOOTSTRAP_SERVERS`` is ``kafka.bootstrap_servers``, and so on.
"""

from __future__ import annotations

import re

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GAVEL_"
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class Section(BaseModel):
    model_config = ConfigDict(validate_default=True, extra="forbid")


class DatabaseSettings(Section):
    url: str = ""
    pool_min: int = Field(default=2, ge=1)
    pool_max: int = Field(default=10, ge=1)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value:
            raise ValueError("is required (e.g. postgresql://user@127.0.0.1:5432/gavel)")
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value


class KafkaSettings(Section):
    bootstrap_servers: str = ""
    topic_group_changes: str = "gavel.group-changes"
    topic_stack_events: str = "gavel.stack-events"
    topic_account_events: str = "gavel.account-events"
    topic_evaluations: str = "gavel.evaluations"
    topic_dead_letter: str = "gavel.dead-letter"
    topic_audit_chunks: str = "gavel.audit-chunks"
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    consumer_group: str = "gavel-evaluators"
    # the largest message value Gavel writes: producers' requests, consumers' fetches and
    # the topics Gavel creates allow it (Kafka's own default, the least allowed, is 1 MiB)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024 * 1024)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        if not value:
            raise ValueError("is required (e.g. 127.0.0.1:9092)")
        for server in value.split(","):
            if not _HOST_PORT.match(server.strip()):
                raise ValueError(f"{server!r} is not host:port")
        return value


class OpaSettings(Section):
    url: str = ""
    # the OPA that compile-checks published modules (unset: url); every module an OPA
    # holds is recompiled on each PUT, so checks in an OPA of their own stay fast
    check_url: str = ""
    timeout: float = Field(default=10.0, gt=0)
    # evaluation queries in flight per worker, and events per query at most
    max_requests: int = Field(default=4, ge=1, le=256)
    batch_size: int = Field(default=32, ge=1, le=1000)
    # pack versions a worker keeps loaded in OPA, least recently used removed first
    # (0: no limit); well above max_requests, so that no version is removed while a
    # query of it is on its way
    max_pack_versions: int = Field(default=100, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value:
            raise ValueError("is required (e.g. http://127.0.0.1:8181)")
        return _checked_http_url(value)

    @field_validator("check_url")
    @classmethod
    def _optional_http_url(cls, value: str) -> str:
        return _checked_http_url(value) if value else value

    @field_validator("max_pack_versions")
    @classmethod
    def _room_for_queries_in_flight(cls, value: int, info: ValidationInfo) -> int:
        least = 2 * info.data.get("max_requests", 1)
        if 0 < value < least:
            raise ValueError(f"must be 0 (no limit) or at least {least}, twice "
                             "GAVEL_OPA_MAX_REQUESTS")
        return value

    @property
    def checks_url(self) -> str:
        """The OPA that compile-checks published modules."""
        return self.check_url or self.url


def _checked_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # how long an API process trusts a token it has checked (0: check every request);
    # revoking or deleting one is seen at once through a notification
    token_cache_seconds: float = Field(default=30.0, ge=0)


class WorkerSettings(Section):
    # messages in flight, and audited entities loaded at once (worker.evaluation_budget);
    # OPA requests are capped separately (opa.max_requests)
    concurrency: int = Field(default=512, ge=1, le=4096)
    shutdown_timeout: float = Field(default=30.0, gt=0)
    # a separate worker process serves /metrics on this loopback port (0: not served)
    metrics_port: int = Field(default=0, ge=0, le=65535)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``6h`` or ``1d``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("must be a duration such as 90, 90s, 15m, 6h or 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class AuditSettings(Section):
    # scheduled audit of accounts with scheduledScanEnabled (0: never)
    interval: float = 86400.0
    # entities per audit chunk message
    chunk_size: int = Field(default=50, ge=1, le=10_000)
    # triggers for the same target within this window become one audit
    coalesce_seconds: float = 2.0

    @field_validator("interval", "coalesce_seconds", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        seconds = parse_duration(value)
        if seconds < 0:
            raise ValueError("must not be negative")
        return seconds


class ResultsSettings(Section):
    # delete finished evaluations older than this many days (unset: keep forever);
    # the latest evaluation of each entity is always kept
    retention_days: float | None = Field(default=None, gt=0)
    # how often the retention job runs, and how many evaluations it deletes per statement
    retention_interval: float = 3600.0
    retention_batch: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("retention_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError("must be positive")
        return seconds


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        case_sensitive=False,
        extra="ignore",
        validate_default=True,
    )

    database: DatabaseSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    kafka: KafkaSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    opa: OpaSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    http: HttpSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    worker: WorkerSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    audit: AuditSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    results: ResultsSettings = Field(default_factory=dict)  # type: ignore[arg-type]
    log_level: str = "INFO"
    # evaluate an errored pack as passing instead of blocking (fail-closed by default)
    fail_open: bool = False

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()


class SettingsError(ValueError):
    """Settings are wrong; the message names every offending variable."""


def env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "_".join(str(part) for part in loc).upper()


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise SettingsError naming each wrong variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [
            f"{env_name(tuple(error['loc']))}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
