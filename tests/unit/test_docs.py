"""The documentation: every setting, route and event field described at its declaration; a short front door;
every page in the site's navigation; one version everywhere."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from common.version import service_version
from docgen import events_page, http_page, settings_page
from producer_api.openapi import SPEC

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_route_and_event_field_has_a_description() -> None:
    assert settings_page.undocumented() == []
    assert http_page.undocumented() == []
    assert events_page.undocumented() == []


def test_the_generated_pages_show_each_declaration() -> None:
    configuration = settings_page.render()
    assert "| `RESULT_TTL_SECONDS` | `int` | `2,592,000` | >= 0 | Results and variants are kept" in configuration
    http = http_page.render()
    assert "## `DELETE /api/v1/images/{task_id}`" in http and "| 410 |" in http
    events = events_page.render()
    assert "## TaskDeleted" in events and "| `owner` | null \\| string | `null` |" in events


def test_the_readme_is_a_front_door_with_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in first_block.strip().splitlines()] == [["make", "up"], ["make", "test"]]
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def _nav_pages(nav: object) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(_nav_pages(item) for item in nav))
    if isinstance(nav, dict):
        return set().union(*(_nav_pages(value) for value in nav.values()))
    return set()


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = _nav_pages(config["nav"])
    written = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").glob("*.md")} - {"changelog.md"}
    generated = {"changelog.md", "reference/configuration.md", "reference/http.md", "reference/events.md"}
    assert pages == written | generated


def test_one_version_in_pyproject_the_package_the_api_and_the_changelog() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert service_version() == declared
    assert SPEC["info"]["version"] == declared
    first_release = re.search(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert first_release is not None and first_release.group(1) == declared


def test_the_openapi_schemas_are_the_bodies_the_routes_build() -> None:
    from datetime import UTC, datetime

    from producer_api.bodies import component_schemas
    from producer_api.status import status_body
    from read_model.fold import SUCCESS, TaskRow

    assert SPEC["components"]["schemas"] == component_schemas()
    status = SPEC["components"]["schemas"]["Status"]
    row = TaskRow(
        task_id="6f1c1c0e-8a43-4d4b-9a38-2f6a4b0e7c11",
        state=SUCCESS,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        result_key="results/x",
        error_code="store_unavailable",
        error_message="retried",
    )
    from flask import Flask

    with Flask(__name__).test_request_context("/"):
        body = status_body(row)
    assert set(body) <= set(status["properties"]) and set(status["required"]) <= set(body)
    assert set(body["result"]) == set(SPEC["components"]["schemas"]["ResultBody"]["properties"])
