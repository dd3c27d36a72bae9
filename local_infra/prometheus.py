"""Prometheus for a local stack, and promtool for the rules: Debian's `prometheus` package unpacked into
.cache/ (local_infra.debian). The scrape configuration names every role's metrics endpoint by job, as
monitoring/rules.yml expects them."""

from __future__ import annotations

import json
from pathlib import Path

from local_infra.debian import unpacked_binary

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "rules.yml"


def promtool(cache_dir: Path = ROOT / ".cache") -> Path:
    return unpacked_binary("prometheus", "usr/bin/promtool", cache_dir)


def prometheus_binary(cache_dir: Path = ROOT / ".cache") -> Path:
    return unpacked_binary("prometheus", "usr/bin/prometheus", cache_dir)


def scrape_config(jobs: dict[str, list[str]], rules: Path = RULES, interval_seconds: int = 5) -> str:
    """prometheus.yml for these jobs (name -> host:port targets, each serving /metrics), with the rules.

    JSON is YAML: no YAML library needed to write it.
    """
    config = {
        "global": {"scrape_interval": f"{interval_seconds}s", "evaluation_interval": f"{interval_seconds}s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in jobs.items() if targets
        ],
    }
    return json.dumps(config, indent=2)


def prometheus_argv(config: Path, data_dir: Path, port: int, cache_dir: Path = ROOT / ".cache") -> list[str]:
    return [
        str(prometheus_binary(cache_dir)),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
        "--log.level=warn",
    ]


def main() -> None:
    """`python -m local_infra.prometheus`: fetch Prometheus and promtool into .cache/ once."""
    print(promtool(), prometheus_binary())


if __name__ == "__main__":
    main()
