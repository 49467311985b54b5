"""The Grafana dashboard and the compose `monitoring` profile use only what the bot exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.process_collector import ProcessCollector

from bot.ops.metrics import Metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
# The contract's names (docs: ARCHITECTURE.md, README "Metrics"); dashboards and alerts use them.
CONTRACT = {
    "mcpcord_turns_total": {"result"},
    "mcpcord_turn_seconds": set(),
    "mcpcord_first_text_seconds": set(),
    "mcpcord_llm_tokens_total": {"model", "kind"},
    "mcpcord_llm_cost_usd_total": {"model"},
    "mcpcord_llm_requests_total": {"model", "outcome"},
    "mcpcord_discord_requests_total": {"kind", "status"},
    "mcpcord_discord_429_total": {"scope"},
    "mcpcord_write_queue_depth": set(),
    "mcpcord_write_wait_seconds": set(),
    "mcpcord_approvals_pending": set(),
    "mcpcord_mcp_calls_total": {"server", "tool", "outcome"},
    "mcpcord_mcp_call_seconds": {"server", "tool"},
    "mcpcord_event_loop_lag_seconds": set(),
}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
METRIC_NAME = re.compile(r"\b((?:mcpcord|process)_[a-z0-9_]+)")


def exported(registry: CollectorRegistry) -> dict[str, tuple[str, set[str]]]:
    """Each sample name a scrape can show -> (its family's contract name, its labels). A family
    whose labels no sample has used yet is still listed, so every name counts."""
    names: dict[str, tuple[str, set[str]]] = {}
    for collector in list(registry._collector_to_names):
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.collect():
            contract = family.name + ("_total" if family.type == "counter" else "")
            for suffix in SUFFIXES.get(family.type, ("",)):
                names[family.name + suffix] = (contract, labels)
    return names


def dashboard_names() -> set[str]:
    dashboard = json.loads((REPO_ROOT / "deploy/grafana/mcpcord.json").read_text("utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def test_the_bot_exports_exactly_the_contract_with_no_user_channel_or_guild_label() -> None:
    names = exported(Metrics().registry)
    families = {contract: labels for contract, labels in names.values()}
    ours = {name: labels for name, labels in families.items() if name.startswith("mcpcord_")}
    assert ours == CONTRACT
    assert "process_resident_memory_bytes" in names  # prometheus_client's process metrics


def test_the_dashboard_names_only_exported_metrics() -> None:
    names = exported(Metrics().registry)
    used = dashboard_names()
    assert {"mcpcord_turns_total", "mcpcord_discord_429_total", "mcpcord_mcp_calls_total"} <= used
    unknown = used - set(names)
    assert not unknown, f"the dashboard names metrics the bot does not export: {sorted(unknown)}"


def test_the_check_catches_a_misspelt_name() -> None:
    registry = CollectorRegistry()
    Counter("mcpcord_turns", "x", ["result"], registry=registry)
    ProcessCollector(registry=registry)
    assert "mcpcord_turns_total" in exported(registry)
    assert "mcpcord_turn_total" not in exported(registry)
    assert METRIC_NAME.findall('sum(rate(mcpcord_turn_total{job="x"}[5m]))') == [
        "mcpcord_turn_total"
    ]


def test_the_monitoring_profile_scrapes_the_bot_and_provisions_the_dashboard() -> None:
    spec = yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text("utf-8"))
    services = spec["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert "profiles" not in services["bot"]  # the bot runs with or without the profile
    env = services["bot"]["environment"]
    prometheus_mount = next(v for v in services["prometheus"]["volumes"] if "prometheus.yml" in v)
    scrape = yaml.safe_load((REPO_ROOT / prometheus_mount.split(":")[0]).read_text("utf-8"))
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"bot:{env['METRICS__PORT']}"] and env["METRICS__HOST"] == "0.0.0.0"
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1)
        for v in services["grafana"]["volumes"]
        if v.startswith(".")
    )
    assert mounts["./deploy/grafana/mcpcord.json"].startswith("/var/lib/grafana/dashboards/")
    provisioning = REPO_ROOT / "deploy/grafana/provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((provisioning / "dashboards/mcpcord.yaml").read_text("utf-8"))
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text("utf-8"))
    dashboard = json.loads((REPO_ROOT / "deploy/grafana/mcpcord.json").read_text("utf-8"))
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {source["datasources"][0]["uid"]}
