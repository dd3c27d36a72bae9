"""Print what the corpus gave, by outcome, at the end of the run."""

from __future__ import annotations

import pytest

from tests.corpus.test_pillow_images import OUTCOMES, SUITE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not OUTCOMES:
        return
    terminalreporter.section(f"Pillow's test images ({SUITE.parent.name}): outputs and refusals")
    for outcome, count in sorted(OUTCOMES.items()):
        terminalreporter.write_line(f"{count:6d}  {outcome}")
