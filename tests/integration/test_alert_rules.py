"""The alerting rules and the dashboard: promtool checks and unit-tests the rules (each alert fires on a
synthetic series and stays silent on a healthy one); every series they read is one the roles export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from common import metrics
from local_infra.prometheus import promtool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"


@pytest.mark.parametrize("command", [["check", "rules", "rules.yml"], ["test", "rules", "rules_test.yml"]])
def test_promtool_accepts_and_tests_the_rules(command: list[str]) -> None:
    done = subprocess.run([str(promtool()), *command], cwd=MONITORING, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _exported() -> set[str]:
    """Every series name the roles' metrics produce (histograms and counters with their suffixes)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        kind = getattr(value, "_type", None)
        if not name:
            continue
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif kind == "counter":
            names |= {f"{name}_total", name}
        else:
            names.add(name)
    return names


def test_every_series_the_rules_and_dashboard_read_is_exported() -> None:
    rules = (MONITORING / "rules.yml").read_text()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    recorded = set(re.findall(r"record: (\S+)", rules))
    read = set(re.findall(r"\b(imgresize_[a-z_]+)", rules + "\n".join(exprs)))
    assert read and read <= _exported(), read - _exported()
    used_records = set(re.findall(r"\b(imgresize:[a-z_0-9:]+)", "\n".join(exprs)))
    assert used_records <= recorded, used_records - recorded
    alerts = re.findall(r"alert: (\S+)", rules)
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "rules_test.yml").read_text()))
    assert set(alerts) == tested
