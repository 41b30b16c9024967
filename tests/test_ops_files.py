"""The Grafana dashboard and the Prometheus alert rules under ops/ match what /metrics exports.

A renamed or removed metric would leave a panel empty and an alert silent without anyone
noticing; these tests fail instead. Where Prometheus's own `promtool` is installed (Debian's
`prometheus` package), it checks the rules' PromQL too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from django.conf import settings

from kangaroo.metrics import exported_names

OPS = Path(settings.BASE_DIR) / "ops"
ALERTS = OPS / "prometheus" / "alerts.yml"
DASHBOARD = OPS / "grafana" / "kangaroo.json"

QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[])")
NAME = re.compile(r"\b(kangaroo_[a-zA-Z0-9_:]*)")


def metrics_named(expr: str) -> set[str]:
    """Metric names in a PromQL expression: every kangaroo_ name, and every name a selector
    (`name{...}`, `name[5m]`) starts with. Quoted label values are left out."""
    bare = QUOTED.sub('""', expr)
    return set(NAME.findall(bare)) | {name for name in SELECTOR.findall(bare) if name not in {"by", "without"}}


def family(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count|created)$", "", name)


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_scanner_sees_selectors_and_ignores_label_values():
    expr = 'sum(rate(kangaroo_http_requests_total{status=~"5.."}[5m])) / rate(up[5m]) and kangaroo_x'
    assert metrics_named(expr) == {"kangaroo_http_requests_total", "up", "kangaroo_x"}
    assert metrics_named('max by (queue) (kangaroo_jobs_queued{queue="kangaroo_y"})') == {"kangaroo_jobs_queued"}


def test_every_alert_rule_is_complete():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "KangarooDevicesOffline",
        "KangarooJobQueueStalled",
        "KangarooWebhookEndpointDisabled",
        "KangarooBoxLagging",
        "KangarooHigh5xxRate",
    }
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    assert len({rule["alert"] for rule in rules}) == len(rules)


def test_alert_rules_name_only_exported_metrics():
    exported = exported_names()
    for rule in alert_rules():
        named = metrics_named(rule["expr"])
        assert named, rule["alert"]
        assert named <= exported, (rule["alert"], named - exported)


def test_the_dashboard_shows_only_exported_metrics_and_every_one_of_them():
    exported = exported_names()
    shown = set()
    for title, expr in dashboard_exprs():
        named = metrics_named(expr)
        assert named and named <= exported, (title, named - exported)
        shown |= named
    assert {family(name) for name in shown} == {family(name) for name in exported}


def test_the_dashboard_is_importable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert [variable["type"] for variable in dashboard["templating"]["list"]] == ["datasource"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert 0 < panel["gridPos"]["w"] <= 24


def test_promtool_accepts_the_rules_where_it_is_installed():
    promtool = shutil.which("promtool")
    if promtool is None:
        return  # the checks above stand; Debian's `prometheus` package brings promtool
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
