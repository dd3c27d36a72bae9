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
    api_only = {"PROMETHEUS_MULTIPROC_DIR", "API_METRICS_HOST", "API_METRICS_PORT", "TRUSTED_PROXY_HOPS"}
    shared = {k: v for k, v in envs[0].items() if k not in api_only}
    assert all({k: v for k, v in env.items() if k not in api_only} == shared for env in envs)
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


def test_the_three_broker_override_makes_one_quorum_that_every_role_uses() -> None:
    """`-f docker-compose.brokers3.yml`: three voters that agree, replicated topics, every role pointed at all three."""
    override = yaml.safe_load((ROOT / "docker-compose.brokers3.yml").read_text())["services"]
    nodes = {
        name: {**COMPOSE["services"]["kafka"]["environment"], **override[name]["environment"]}
        for name in ("kafka", "kafka-2", "kafka-3")
    }
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes.values()}
    assert len(voters) == 1
    listed = dict(voter.split("@") for voter in voters.pop().split(","))
    for name, env in nodes.items():
        assert listed[str(env["KAFKA_NODE_ID"])] == f"{name}:9093"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
    assert len({env["KAFKA_NODE_ID"] for env in nodes.values()}) == 3
    app_roles = [name for name, service in COMPOSE["services"].items() if "build" in service]
    for role in app_roles:
        env = override[role]["environment"]
        assert set(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == {f"{n}:9092" for n in nodes}, role
        assert (env["TOPIC_REPLICATION_FACTOR"], env["TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2"), role


def test_the_image_runs_the_roles_with_the_malloc_settings_of_the_local_stack() -> None:
    """One value in two places: the container image and `make up` must not drift apart."""
    from local_infra.up import MALLOC_TUNABLES

    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    assert f"ENV GLIBC_TUNABLES={MALLOC_TUNABLES}" in dockerfile


def test_only_the_edge_is_published_and_it_fills_in_every_name_of_its_template() -> None:
    import re

    services = COMPOSE["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"edge"}
    template = (ROOT / "edge" / "nginx.conf.template").read_text()
    names = set(re.findall(r"\$\{(EDGE_[A-Z_]+)\}", template))
    assert names == set(services["edge"]["environment"])
    assert services["edge"]["environment"]["EDGE_API_ADDRESS"] == "api:8080"
    assert "IDEMPOTENCY_SECRET" in services["api"]["environment"]
