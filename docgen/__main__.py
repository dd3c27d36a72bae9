"""`python -m docgen`: write the generated reference pages into docs/reference/."""

from __future__ import annotations

import re
from pathlib import Path

from docgen import events_page, http_page, settings_page

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "reference"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, page in (("configuration", settings_page), ("http", http_page), ("events", events_page)):
        (OUT / f"{name}.md").write_text(page.render())
    # The changelog lives at the repository's root; its links to docs/ are relative to it.
    changelog = (ROOT / "CHANGELOG.md").read_text()
    (ROOT / "docs" / "changelog.md").write_text(re.sub(r"\]\(docs/", "](", changelog))
    print(f"reference pages and the changelog written into {ROOT / 'docs'}")


if __name__ == "__main__":
    main()
