"""docker-compose.yml cannot run here; at least every service it names must exist and start a real entry point."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _resolve(target: str) -> object:
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.removesuffix("()").split("."):
        obj = getattr(obj, part)
    return obj


def test_every_role_and_the_infrastructure_are_there() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "minio", "topics", "api", "worker", "projector"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 1
    for name in ("kafka", "minio", "api"):
        assert "healthcheck" in services[name]


def test_every_command_is_a_real_entry_point() -> None:
    for name, service in COMPOSE["services"].items():
        if "build" not in service:
            continue
        command = service["command"]
        if command[0] == "granian":
            assert "--factory" in command, name
            app_factory = _resolve(command[-1])
            assert callable(app_factory), name
        else:
            assert command[0] in SCRIPTS, f"{name}: {command[0]} is not a console script"
            assert callable(_resolve(SCRIPTS[command[0]])), name


def test_app_services_share_one_configuration() -> None:
    envs = [COMPOSE["services"][name]["environment"] for name in ("api", "worker", "projector", "topics")]
    shared = {k: v for k, v in envs[0].items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    assert all({k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"} == shared for env in envs)
    assert shared["AUTH_REQUIRED"] == "true"
    assert envs[0]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_the_image_holds_every_package_the_project_installs() -> None:
    """The Dockerfile COPYs each top-level package pyproject names: a missing one fails only at import."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.removesuffix("*") for p in include}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and len(words) == 3 and words[1] == words[2]:
            copied.add(words[1])
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert all((ROOT / package / "__init__.py").exists() for package in packages)
