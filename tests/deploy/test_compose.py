"""deploy/docker-compose.yml, checked without Docker Compose: read as Compose reads it (YAML, then variable
interpolation), its structure, its agreement with the app's settings and with the other services, its health
checks run for real against local servers, and Prometheus' configuration checked by promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.http_server import METRICS_PATH, READY_PATH
from core.config import Settings
from core.logs import is_secret_key, scrub_text
from tests.chroma_server import free_port, start_chroma
from tests.conftest import _SKIP_NOTES as SKIP_NOTES
from tests.conftest import REPO_ROOT
from tests.deploy.compose import (
    InterpolationError,
    duration_seconds,
    environment,
    interpolate,
    load,
    load_raw,
)
from tests.redis_server import RedisServer

COMPOSE = REPO_ROOT / "deploy" / "docker-compose.yml"
DEPLOY = COMPOSE.parent
BOT_IMAGE = "api-assistant:latest"
SHARED = ("postgres", "chroma", "redis")
# What an operator puts in the environment or the --env-file; the test values are not real credentials.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-compose-test",
    "SLACK_SIGNING_SECRET": "compose-test-signing-secret",
    "GROQ_API_KEY": "gsk_composetest",
    "POSTGRES_PASSWORD": "composetest1",
}
REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "POSTGRES_PASSWORD")
SETTINGS_VARIABLES = {name.upper(): field for name, field in Settings.model_fields.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE, SECRETS)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def bots(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if service.get("image") == BOT_IMAGE}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        note = "compose Prometheus config test skipped: no promtool; install it with apt-get install prometheus"
        SKIP_NOTES[note] = None
        pytest.skip(note)
    return found


def bot_port(bot: dict[str, Any]) -> int:
    return int(environment(bot).get("PORT", Settings.model_fields["port"].default))


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, test
    return list(test)


def command_option(command: list[str], option: str) -> str:
    """The value of `--option VALUE` or `--option=VALUE` in a command list."""
    for i, part in enumerate(command):
        if part == option:
            return command[i + 1]
        if part.startswith(option + "="):
            return part.split("=", 1)[1]
    raise AssertionError(f"{option} not in {command}")


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """{volume name: target} for the service's named volumes (bind mounts start with . or /)."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if not source.startswith((".", "/")):
            mounts[source] = target
    return mounts


def bind_mounts(service: dict[str, Any]) -> dict[Path, str]:
    """{host path (resolved from the compose file's folder): target} for the service's bind mounts."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[(DEPLOY / source).resolve()] = target
    return mounts


def run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


@contextmanager
def http_stand_in(status: int) -> Iterator[int]:
    """A local HTTP server answering every GET with `status`; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- the file as Compose reads it -----------------------------------------------------------------------


def test_the_topology_is_two_bots_and_the_shared_services(services: dict[str, Any], bots: dict[str, Any]) -> None:
    assert set(bots) == {"bot-1", "bot-2"}
    assert set(services) == {*bots, *SHARED, "prometheus"}


def test_every_service_has_an_image_and_the_others_are_pinned(services: dict[str, Any], bots: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        if name not in bots:
            image = service["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin a version, not {image}"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["chroma"]["image"].startswith("chromadb/chroma:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")


def test_bots_build_the_repository_image_and_run_the_bot(bots: dict[str, Any]) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert entrypoint[-1] == "api-assistant"  # so `command: [run]` is `api-assistant run`
    for name, bot in bots.items():
        assert (DEPLOY / bot["build"]["context"]).resolve() == REPO_ROOT, name
        assert bot["command"] == ["run"], name


def test_every_service_has_a_healthcheck_and_a_restart_policy(services: dict[str, Any]) -> None:
    for name, service in services.items():
        healthcheck_command(service)
        check = service["healthcheck"]
        assert duration_seconds(check["timeout"]) < duration_seconds(check["interval"]), name
        assert check["retries"] >= 1, name
        assert service["restart"] in {"always", "unless-stopped"}, name


def test_dependencies_name_real_services_and_bots_wait_for_healthy_shared_services(
    services: dict[str, Any], bots: dict[str, Any]
) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services and dependency != name, (name, dependency)
            assert how["condition"] in conditions, (name, dependency)
    for name, bot in bots.items():
        assert {dependency: how["condition"] for dependency, how in bot["depends_on"].items()} == dict.fromkeys(
            SHARED, "service_healthy"
        ), name
    for name in SHARED:
        assert not services[name].get("depends_on"), name


def test_volumes_are_declared_used_and_never_shared_between_replicas(
    compose: dict[str, Any], services: dict[str, Any], bots: dict[str, Any]
) -> None:
    declared = set(compose["volumes"])
    used: list[str] = [volume for service in services.values() for volume in named_volumes(service)]
    assert set(used) == declared
    assert len(used) == len(set(used)), "a named volume is mounted by two services"
    for service in services.values():
        for source in bind_mounts(service):
            assert source.is_file(), source
    for name, bot in bots.items():
        data_dir = environment(bot)["DATA_DIR"]
        assert list(named_volumes(bot).values()) == [data_dir], name
    assert list(named_volumes(services["postgres"]).values()) == ["/var/lib/postgresql/data"]
    assert list(named_volumes(services["chroma"]).values()) == [command_option(services["chroma"]["command"], "--path")]
    assert list(named_volumes(services["redis"]).values()) == ["/data"]
    assert list(named_volumes(services["prometheus"]).values()) == [
        command_option(services["prometheus"]["command"], "--storage.tsdb.path")
    ]


def test_only_the_bots_and_prometheus_are_published_and_only_on_loopback(
    services: dict[str, Any], bots: dict[str, Any]
) -> None:
    host_ports = []
    for name, service in services.items():
        ports = service.get("ports", [])
        if name in SHARED:
            assert ports == [], f"{name} should be reachable only on the Compose network"
        for mapping in ports:
            host, host_port, container_port = mapping.split(":")
            assert host == "127.0.0.1", mapping
            host_ports.append(host_port)
            if name in bots:
                assert int(container_port) == bot_port(bots[name])
    assert len(host_ports) == len(set(host_ports))
    assert all(len(bot.get("ports", [])) == 1 for bot in bots.values())


# ---- the bots agree with the app's settings -------------------------------------------------------------


def test_every_bot_variable_is_a_setting(bots: dict[str, Any]) -> None:
    for name, bot in bots.items():
        unknown = set(environment(bot)) - set(SETTINGS_VARIABLES)
        assert not unknown, f"{name}: {sorted(unknown)} are not fields of core.config.Settings"


def test_the_bot_environment_is_valid_settings(bots: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Read by pydantic-settings from the process environment, as in the container."""
    for name, bot in bots.items():
        for variable in SETTINGS_VARIABLES:
            monkeypatch.delenv(variable, raising=False)
        for variable, value in environment(bot).items():
            monkeypatch.setenv(variable, value)
        read = Settings(_env_file=None)  # type: ignore[call-arg]
        assert read.environment == "production", name
        assert read.database_url is not None and read.chroma_host and read.redis_url, name
        assert read.generation_enabled, name
        assert read.slack_bot_token is not None
        assert read.slack_bot_token.get_secret_value() == SECRETS["SLACK_BOT_TOKEN"]


def test_bots_run_slack_http_mode(bots: dict[str, Any]) -> None:
    for name, bot in bots.items():
        variables = environment(bot)
        assert variables["SLACK_BOT_TOKEN"] and variables["SLACK_SIGNING_SECRET"], name
        # An app-level token would switch to Socket Mode; no other platform in this topology.
        assert "SLACK_APP_TOKEN" not in variables and "DISCORD_BOT_TOKEN" not in variables, name


def test_replicas_are_configured_identically(bots: dict[str, Any]) -> None:
    first, *others = bots.values()
    for other in others:
        assert environment(other) == environment(first)
        assert {key: value for key, value in other.items() if key not in {"ports", "volumes"}} == {
            key: value for key, value in first.items() if key not in {"ports", "volumes"}
        }


def test_database_url_points_at_the_postgres_service(services: dict[str, Any], bots: dict[str, Any]) -> None:
    postgres = environment(services["postgres"])
    for name, bot in bots.items():
        url = urlsplit(environment(bot)["DATABASE_URL"])
        assert url.scheme.split("+")[0] == "postgresql", name
        assert (url.hostname, url.port) == ("postgres", 5432), name  # the service name, Postgres' own port
        assert url.username == postgres["POSTGRES_USER"], name
        assert url.password == postgres["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"], name
        assert url.path == "/" + postgres["POSTGRES_DB"], name


def test_chroma_host_and_port_point_at_the_chroma_server(services: dict[str, Any], bots: dict[str, Any]) -> None:
    chroma = services["chroma"]
    assert chroma["command"][0] == "run"  # the image's entrypoint is `chroma`: this is `chroma run`
    assert command_option(chroma["command"], "--host") == "0.0.0.0"
    for name, bot in bots.items():
        variables = environment(bot)
        assert variables["CHROMA_HOST"] == "chroma", name
        assert variables["CHROMA_PORT"] == command_option(chroma["command"], "--port"), name


def test_the_chroma_server_is_the_version_the_client_is_locked_to(services: dict[str, Any]) -> None:
    locked = re.search(r"^chromadb==(\S+)", (REPO_ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert locked is not None
    assert services["chroma"]["image"] == f"chromadb/chroma:{locked.group(1)}"


def test_redis_url_points_at_the_redis_service_which_persists(services: dict[str, Any], bots: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert command[0] == "redis-server" and command_option(command, "--appendonly") == "yes"
    port = command_option(command, "--port") if "--port" in command else "6379"
    for name, bot in bots.items():
        url = urlsplit(environment(bot)["REDIS_URL"])
        assert url.scheme == "redis" and url.hostname == "redis" and str(url.port) == port, name


def test_bots_run_read_only_with_a_tmpfs_and_a_memory_limit(bots: dict[str, Any]) -> None:
    for name, bot in bots.items():
        assert bot["read_only"] is True, name
        assert any(entry.split(":")[0] == "/tmp" for entry in bot["tmpfs"]), name
        assert bot["deploy"]["resources"]["limits"]["memory"], name  # the memory alert compares with the limit


def test_stop_grace_period_outlasts_shutdown_grace(bots: dict[str, Any]) -> None:
    default = Settings.model_fields["shutdown_grace_seconds"].default
    for name, bot in bots.items():
        grace = float(environment(bot).get("SHUTDOWN_GRACE_SECONDS", default))
        # Draining ends at the grace period; closing Slack, Redis and the registry needs a few seconds more.
        assert duration_seconds(bot["stop_grace_period"]) >= grace + 5, name


def test_bot_healthcheck_asks_ready_on_port(bots: dict[str, Any]) -> None:
    for name, bot in bots.items():
        command = " ".join(healthcheck_command(bot))
        assert f"http://127.0.0.1:{bot_port(bot)}{READY_PATH}'" in command, name


# ---- no secrets in the file ---------------------------------------------------------------------------------


SECRET_SETTINGS = {name for name, field in SETTINGS_VARIABLES.items() if SecretStr in get_args(field.annotation)}


def is_secret_variable(variable: str) -> bool:
    return is_secret_key(variable) or variable in SECRET_SETTINGS


def secret_variables(service: dict[str, Any]) -> list[str]:
    return [variable for variable in environment(service) if is_secret_variable(variable)]


def test_secrets_come_only_from_the_environment(services: dict[str, Any]) -> None:
    other = {variable: value[::-1] + "x" for variable, value in SECRETS.items()}
    elsewhere = load(COMPOSE, other)["services"]
    seen = set()
    for name, service in services.items():
        for variable in secret_variables(service):
            seen.add(variable)
            value, changed = environment(service)[variable], environment(elsewhere[name])[variable]
            assert value != changed, f"{name}: {variable} does not come from the environment"
            if variable in SECRETS:
                assert (value, changed) == (SECRETS[variable], other[variable]), f"{name}: {variable}"
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "GROQ_API_KEY", "POSTGRES_PASSWORD", "DATABASE_URL"} <= seen


def test_no_literal_string_in_the_file_looks_like_a_credential() -> None:
    def strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for child_key, value in node.items():
                yield from strings(value, str(child_key))
        elif isinstance(node, list):
            for item in node:
                yield from strings(item, key)
        elif isinstance(node, str):
            yield key, node

    for key, value in strings(load_raw(COMPOSE)):
        if not is_secret_variable(key):  # those are checked above
            assert scrub_text(value) == value, f"{key}: {value}"


def test_required_secrets_refuse_to_start_without_them() -> None:
    for variable in REQUIRED:
        missing = {key: value for key, value in SECRETS.items() if key != variable}
        refusal = f"required variable {variable} is missing a value: set {variable}"
        with pytest.raises(InterpolationError, match=refusal):
            load(COMPOSE, missing)
        with pytest.raises(InterpolationError, match=variable):
            load(COMPOSE, {**missing, variable: ""})


def test_groq_is_optional(bots: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    without = load(COMPOSE, {key: value for key, value in SECRETS.items() if key != "GROQ_API_KEY"})
    for name in bots:
        variables = environment(without["services"][name])
        assert variables["GROQ_API_KEY"] == ""
        for variable in SETTINGS_VARIABLES:
            monkeypatch.delenv(variable, raising=False)
        for variable, value in variables.items():
            monkeypatch.setenv(variable, value)
        assert not Settings(_env_file=None).generation_enabled  # type: ignore[call-arg]  # retrieval-only answers


# ---- health checks, run for real ------------------------------------------------------------------------


def test_bot_healthcheck_passes_only_when_ready(bots: dict[str, Any]) -> None:
    bot = bots["bot-1"]
    command = healthcheck_command(bot)
    assert command[:2] == ["CMD", "python3"]
    address = f"127.0.0.1:{bot_port(bot)}"

    def check(port: int) -> int:
        args = [sys.executable, *(part.replace(address, f"127.0.0.1:{port}") for part in command[2:])]
        return run(args).returncode

    with http_stand_in(200) as port:
        assert check(port) == 0
    with http_stand_in(503) as port:
        assert check(port) != 0
    assert check(free_port()) != 0


def test_chroma_healthcheck_passes_against_chroma_run(services: dict[str, Any], tmp_path: Path) -> None:
    command = healthcheck_command(services["chroma"])
    assert command[:3] == ["CMD", "bash", "-c"]
    address = f"/dev/tcp/127.0.0.1/{command_option(services['chroma']['command'], '--port')}"
    assert address in command[3]

    def check(port: int) -> int:
        return run(["bash", "-c", command[3].replace(address, f"/dev/tcp/127.0.0.1/{port}")], timeout=10).returncode

    with start_chroma(tmp_path / "chroma") as chroma_port:
        assert check(chroma_port) == 0
    with http_stand_in(404) as port:
        assert check(port) != 0
    assert check(free_port()) != 0


def test_redis_healthcheck_passes_against_redis_server(services: dict[str, Any], redis_server: RedisServer) -> None:
    if shutil.which("redis-cli") is None:
        pytest.skip("no redis-cli (Debian's redis-tools)")
    command = healthcheck_command(services["redis"])
    assert command[0] == "CMD-SHELL" and command[1].startswith("redis-cli ")

    def check(port: int) -> int:
        return run(["sh", "-c", command[1].replace("redis-cli ", f"redis-cli -p {port} ", 1)]).returncode

    assert check(urlsplit(redis_server.url).port or 0) == 0
    assert check(free_port()) != 0


def test_postgres_healthcheck_uses_the_configured_user_and_database(services: dict[str, Any]) -> None:
    command = healthcheck_command(services["postgres"])
    variables = environment(services["postgres"])
    assert command[1] == "pg_isready"
    assert command_option(command, "--username") == variables["POSTGRES_USER"]
    assert command_option(command, "--dbname") == variables["POSTGRES_DB"]


# ---- Prometheus ---------------------------------------------------------------------------------------------


def prometheus_files(services: dict[str, Any]) -> tuple[Path, dict[str, Any], dict[Path, str]]:
    prometheus = services["prometheus"]
    mounts = bind_mounts(prometheus)
    target = command_option(prometheus["command"], "--config.file")
    [config_path] = [source for source, mounted in mounts.items() if mounted == target]
    return config_path, yaml.safe_load(config_path.read_text(encoding="utf-8")), mounts


def test_prometheus_scrapes_exactly_the_bots_on_their_port(services: dict[str, Any], bots: dict[str, Any]) -> None:
    _, config, _ = prometheus_files(services)
    [job] = config["scrape_configs"]
    assert job["job_name"] == "api-assistant"  # alerts.yml's AssistantDown selects this job
    assert job.get("metrics_path", "/metrics") == METRICS_PATH
    assert job.get("scheme", "http") == "http"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert sorted(targets) == sorted(f"{name}:{bot_port(bot)}" for name, bot in bots.items())
    # The alert rules assume a scrape every 30 s or more often.
    assert duration_seconds(job.get("scrape_interval", config["global"]["scrape_interval"])) <= 30


def test_prometheus_mounts_the_repository_alert_rules(services: dict[str, Any]) -> None:
    config_path, config, mounts = prometheus_files(services)
    config_dir = Path(mounts[config_path]).parent
    assert config["rule_files"]
    for rule_file in config["rule_files"]:
        in_container = config_dir / rule_file
        [source] = [source for source, mounted in mounts.items() if Path(mounted) == in_container]
        assert source == config_path.parent / rule_file == REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"


def test_promtool_accepts_the_prometheus_config(services: dict[str, Any], promtool: str) -> None:
    config_path, _, _ = prometheus_files(services)
    result = run([promtool, "check", "config", str(config_path)], timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rules found" in result.stdout  # the rule files were read too


# ---- the reader itself ----------------------------------------------------------------------------------------


def test_interpolation_follows_the_compose_rules() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("$$A ${A} $A ${A}b", env) == "$A a a ab"
    assert interpolate("${MISSING:-x} ${EMPTY:-x} ${EMPTY-x} ${MISSING-x}", env) == "x x  x"
    assert interpolate("${A:+y} ${EMPTY:+y} ${EMPTY+y} ${MISSING+y}", env) == "y  y "
    assert interpolate("${MISSING:-${A}-${MISSING:-z}}", env) == "a-z"
    assert interpolate("${EMPTY?why}", env) == ""
    with pytest.raises(InterpolationError, match="required variable EMPTY is missing a value: why a"):
        interpolate("${EMPTY:?why $A}", env)
    for malformed in ("$", "cost: $ 5", "${A", "${1A}", "${A:x}", "${}"):
        with pytest.raises(InterpolationError):
            interpolate(malformed, env)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="${}:-?+AB_ x", max_size=400))
def test_interpolation_ends_on_any_text(text: str) -> None:
    with suppress(InterpolationError):
        interpolate(text, {"A": "a", "B": ""})


def test_durations() -> None:
    assert duration_seconds("30s") == 30
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("1h") == 3600
    assert duration_seconds("500ms") == 0.5
    assert duration_seconds(15) == 15
    for bad in ("", "30", "30 s", "s", "1d"):
        with pytest.raises(ValueError):
            duration_seconds(bad)


# ---- the operations guide agrees with the file and the benchmarks -------------------------------------------

# Figures docs/OPERATIONS.md (and README) quote, each with the line of benchmarks/RESULTS.md it comes from.
QUOTED_FIGURES = {
    "median 130 ms, p95 155 ms": "| 10 | 130 ms / 155 ms |",
    "median 511 ms, p95 587 ms": "| 50 | 511 ms / 587 ms |",
    "median 446 ms, p95 525 ms": "| 446 ms / 525 ms |",
    "median 28.5 ms, p95 49.6 ms": "| 28.5 ms | 49.6 ms |",
    "10 questions per second sustained, full answer p95 2.06 s": "| 14 / 29 | 2,022 / 2,062 / 2,085 |",
}


def test_the_scaling_guide_quotes_the_measured_figures_and_names_real_variables() -> None:
    guide = (REPO_ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    section = guide[guide.index("## Running several replicas\n") :]
    section = section[: section.index("\n## ", 1)]
    results = (REPO_ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    for quoted, measured in QUOTED_FIGURES.items():
        assert quoted in section, quoted
        assert measured in results, f"benchmarks/RESULTS.md changed: update {quoted!r} in docs/OPERATIONS.md"
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/OPERATIONS.md#running-several-replicas)" in readme
    assert "about **10 questions per second" in readme  # the capacity statement, from the load test above
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section))
    compose_only = set(REQUIRED) - set(SETTINGS_VARIABLES)
    assert named - set(SETTINGS_VARIABLES) <= compose_only, named - set(SETTINGS_VARIABLES)
    assert {"DATABASE_URL", "CHROMA_HOST", "CHROMA_PORT", "REDIS_URL"} <= named
