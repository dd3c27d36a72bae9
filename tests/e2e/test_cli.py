"""`imgresize submit` over a batch, as a user runs it: progress, summary, results on disk, exit code."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from ops.client import parse_size
from tests.pipeline import Pipeline, jpeg_bytes

pytestmark = pytest.mark.e2e

IMGRESIZE = str(Path(sys.executable).parent / "imgresize")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IMGRESIZE, *args], capture_output=True, text=True, timeout=300)


def test_batch_of_30_with_one_corrupt_file(pipeline: Pipeline, tmp_path: Path) -> None:
    batch = tmp_path / "in"
    (batch / "nested").mkdir(parents=True)
    for i in range(29):
        (batch / ("nested" if i % 3 == 0 else "") / f"photo{i:02}.jpg").write_bytes(jpeg_bytes(120 + i, 90))
    (batch / "broken.jpg").write_bytes(jpeg_bytes(400, 300)[:700])  # a JPEG header, then nothing
    out = tmp_path / "out"

    run = _run("submit", str(batch), "--size", "64x48", "--out", str(out), "--url", pipeline.base_url)
    assert run.returncode == 1, run.stderr
    assert "resizing" in run.stderr and "30/30" in run.stderr  # the progress bar, finished
    assert "29 succeeded, 1 failed" in run.stderr
    assert "corrupt_image" in run.stdout and "FAILURE" in run.stdout
    saved = sorted(p.name for p in out.iterdir())
    assert len(saved) == 29 and "broken.jpg" not in saved
    for name in saved:
        with Image.open(out / name) as image:
            assert image.size == (64, 48)

    (batch / "broken.jpg").unlink()
    again = _run("submit", str(batch / "nested"), "--size", "x40", "--wait", "--url", pipeline.base_url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "10 succeeded, 0 failed" in again.stderr


def test_status_and_result_commands(pipeline: Pipeline, tmp_path: Path) -> None:
    task_id = pipeline.submit(jpeg_bytes(300, 200), width=30).json()["task_id"]
    pipeline.wait_terminal(task_id)
    status = _run("status", task_id, "--url", pipeline.base_url)
    assert status.returncode == 0 and '"SUCCESS"' in status.stdout
    target = tmp_path / "small.jpg"
    result = _run("result", task_id, "-o", str(target), "--url", pipeline.base_url)
    assert result.returncode == 0
    assert Image.open(io.BytesIO(target.read_bytes())).size == (30, 20)


@pytest.mark.parametrize(
    ("size", "fields"),
    [
        ("400x300", {"width": "400", "height": "300"}),
        ("400x", {"width": "400"}),
        ("x3", {"height": "3"}),
        ("100x100, 400X", {"sizes": "100x100,400x"}),
    ],
)
def test_sizes(size: str, fields: dict[str, str]) -> None:
    assert parse_size(size) == fields


def test_several_sizes_save_one_file_per_variant(pipeline: Pipeline, tmp_path: Path) -> None:
    source = tmp_path / "in" / "beach.jpg"
    source.parent.mkdir()
    source.write_bytes(jpeg_bytes(800, 600))
    out = tmp_path / "out"
    run = _run(
        "submit",
        str(source),
        "--size",
        "100x100,200x",
        "--format",
        "png",
        "--out",
        str(out),
        "--url",
        pipeline.base_url,
    )
    assert run.returncode == 0, run.stderr
    saved = {p.name: Image.open(io.BytesIO(p.read_bytes())).size for p in out.iterdir()}
    assert saved == {"beach-100x100.png": (100, 100), "beach-200x.png": (200, 150)}


@pytest.mark.parametrize("size", ["x", "400", "axb", "400x300x2", "", "100x100,", "100x100,y"])
def test_bad_sizes(size: str) -> None:
    with pytest.raises(ValueError):
        parse_size(size)


def test_submit_with_a_priority_then_lanes_shows_each_lanes_backlog(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    import os

    pipeline = pipeline_factory(workers=0)
    batch = tmp_path / "in"
    batch.mkdir()
    for i in range(3):
        (batch / f"p{i}.jpg").write_bytes(jpeg_bytes(60, 40))
    run = _run("submit", str(batch), "--size", "20x20", "--priority", "bulk", "--url", pipeline.base_url)
    assert run.returncode == 0, run.stderr

    env = {**os.environ, **pipeline.settings.as_env(), "COLUMNS": "250"}
    shown = subprocess.run([IMGRESIZE, "lanes"], capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("│")[2].strip(): line for line in shown.stdout.splitlines() if line.count("│") >= 7}
    bulk = rows[pipeline.settings.lane("bulk").requests_topic]
    interactive = rows[pipeline.settings.requests_topic]
    # log end, done, waiting: three bulk requests wait (no workers); the interactive lane is empty.
    assert [cell.strip() for cell in bulk.split("│")[4:7]] == ["3", "0", "3"]
    assert [cell.strip() for cell in interactive.split("│")[4:7]] == ["0", "0", "0"]
