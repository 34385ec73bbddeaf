"""Alerts and dashboard as code: promtool validates and unit-tests the rules, and every metric name the rules
and the Grafana dashboard query is one the running app really exports (scraped over HTTP)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.http_server import HttpServer
from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from tests.conftest import _SKIP_NOTES as SKIP_NOTES
from tests.conftest import REPO_ROOT
from tests.deploy.promql import MAX_EXPR_CHARS, metric_names
from tests.fake_groq import Reply, ServerError, start_fake_groq
from tests.ops import Scrape, scrape

RULES = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "api-assistant.json"
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every target, not by the app
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$job": ".+"}
TEAM = Origin("slack", "T1", channel="C1", user="U1")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        note = "alert rule tests skipped: no promtool; install Debian's prometheus package (apt-get install prometheus)"
        SKIP_NOTES[note] = None  # repeated once at the end of the run
        pytest.skip(note)
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every panel target, with Grafana's variables replaced by plain values."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            yield panel["title"], expr


def template_metrics() -> set[str]:
    """Metrics named by the dashboard's `label_values(metric, label)` variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    names = set()
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.match(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,", variable["definition"])
            assert match, variable["definition"]
            names.add(match.group(1))
    return names


# ---- promtool -----------------------------------------------------------------------------------------


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass_and_cover_every_alert(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts never shown to fire"
    assert names - quiet == set(), "alerts never shown to stay quiet"


def test_every_alert_names_its_runbook() -> None:
    runbooks = (REPO_ROOT / "docs" / "ALERTS.md").read_text()
    anchors = {m.lower() for m in re.findall(r"^## (\w+)", runbooks, re.MULTILINE)}
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["runbook"] == f"docs/ALERTS.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"docs/ALERTS.md has no section for {rule['alert']}"


def test_promtool_parses_every_dashboard_query(promtool: str, tmp_path: Path) -> None:
    # promtool has no "check query"; a recording rule per query gets the same PromQL parser.
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# ---- names the app really exports ---------------------------------------------------------------------


@pytest.fixture
async def exported(tmp_path: Path, embedder: Any, example_spec: Path) -> Scrape:
    """/metrics of the real app after an upload, a generated answer, a fallback and feedback."""
    async with start_fake_groq() as fake:
        settings = Settings(data_dir=tmp_path / "data", groq_api_key="gsk_test_not_real", groq_base_url=fake.base_url,
                            groq_timeout_seconds=2.0, groq_max_retries=0, _env_file=None)
        async with build_assistant(settings, embedder=embedder) as assistant:
            server = HttpServer(assistant)
            async with server.serving("127.0.0.1", 0):
                assistant.telemetry.prepare_platform("slack")
                await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
                fake.script(Reply("Refund it with [1]."), ServerError(500))
                await assistant.ask(AskQuestion(TEAM, "how do I refund an order?"))
                await assistant.ask(AskQuestion(TEAM, "how do I delete a customer?"))
                await assistant.record_feedback(TEAM, "a1", True)
                return await scrape(f"http://127.0.0.1:{server.port}")


def test_the_scrape_has_the_groq_and_histogram_series(exported: Scrape) -> None:
    names = exported.exported_names()
    assert {"api_assistant_answer_seconds_bucket", "api_assistant_groq_errors_total",
            "api_assistant_groq_calls_total", "process_cpu_seconds_total"} <= names
    assert exported.families["api_assistant_answer_seconds"] == "histogram"
    assert exported.families["api_assistant_questions"] == "counter"


def test_alert_rules_use_only_exported_metrics(exported: Scrape) -> None:
    exported_names = exported.exported_names() | PROMETHEUS_OWN
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used, f"{rule['alert']}: no metric found in its expression"
        assert used <= exported_names, f"{rule['alert']} uses {sorted(used - exported_names)}, not exported"


def test_dashboard_uses_only_exported_metrics(exported: Scrape) -> None:
    exported_names = exported.exported_names()
    seen = set()
    for title, expr in dashboard_queries():
        used = metric_names(expr)
        assert used, f"panel {title!r}: no metric found in {expr}"
        assert used <= exported_names, f"panel {title!r} uses {sorted(used - exported_names)}, not exported"
        seen |= used
    assert template_metrics() <= exported_names
    # The dashboard shows what the issue asks for: traffic, errors, latency, caches, queue, uploads, resources.
    for needed in ("api_assistant_questions_total", "api_assistant_answer_seconds_bucket",
                   "api_assistant_cache_hits_total", "api_assistant_queue_waiting", "api_assistant_uploads_total",
                   "process_cpu_seconds_total", "process_resident_memory_bytes",
                   "api_assistant_data_filesystem_free_bytes"):
        assert needed in seen, needed


# ---- the scanner ----------------------------------------------------------------------------------------


def test_metric_names_ignores_functions_labels_ranges_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_seconds_bucket{job=~"x|y", le!="1"}[5m] offset 1h)))'
        ' > on(instance) group_left(component) b_total / ignoring(x) c unless d{name="e{f}"} and bool 1e-3'
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d"}
    assert metric_names("up == 0") == {"up"}
    assert metric_names("") == set()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc_:{}[]()\"'`\\ ,=~!0123456789.by", max_size=300))
def test_metric_names_terminates_on_any_text(text: str) -> None:
    names = metric_names(text)
    assert all(name and name[0] not in "0123456789" for name in names)


def test_metric_names_refuses_huge_input() -> None:
    with pytest.raises(ValueError):
        metric_names("a" * (MAX_EXPR_CHARS + 1))
