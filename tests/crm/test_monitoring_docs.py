"""docs/monitoring: the Grafana dashboard and the metrics table name only metrics the code exports, every exported
family is documented, and the sample Prometheus configuration scrapes /metrics with the bearer token."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from crm.metrics import gauge_sources

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def exported_families() -> set[str]:
    families = {metric.name for metric in REGISTRY.collect() if metric.name.startswith("crm_")}
    return families | {source.name for source in gauge_sources()} | {"crm_build_info"}


def exported_names() -> set[str]:
    return {family + suffix for family in exported_families() for suffix in SUFFIXES}


def test_the_dashboard_queries_only_exported_metrics_and_covers_each_area():
    dashboard = json.loads((DOCS / "monitoring" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bcrm_[a-z_]+", expr)}
    assert used <= exported_names(), used - exported_names()
    for family in ("crm_http_request_duration_seconds_bucket", "crm_db_pool_connections", "crm_task_queue_depth",
                   "crm_webhook_outbox_pending", "crm_webhook_deliveries_total", "crm_segment_refresh_lag_seconds",
                   "crm_import_rows_total", "crm_export_rows_total", "crm_rate_limit_rejections_total",
                   "crm_build_info"):  # fmt: skip
        assert family in used, family


def test_the_metrics_table_documents_every_family_and_nothing_else():
    text = (DOCS / "monitoring.md").read_text()
    table = text[text.index("### What it holds") : text.index("### How the figures are made")]
    documented = set(re.findall(r"`(crm_[a-z_]+)`", table))
    assert documented <= exported_names(), documented - exported_names()
    undocumented = {f for f in exported_families() if not any(f + s in documented for s in SUFFIXES)}
    assert not undocumented, undocumented


def test_the_sample_scrape_configuration_reads_metrics_with_the_token():
    config = yaml.safe_load((DOCS / "monitoring" / "prometheus.yml").read_text())
    (web,) = [job for job in config["scrape_configs"] if job["job_name"] == "crm"]
    assert web["metrics_path"] == "/metrics"
    assert web["authorization"]["type"] == "Bearer" and web["authorization"]["credentials_file"]
    assert web["static_configs"][0]["targets"]
