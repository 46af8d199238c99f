"""Build the shipped ``tracker.js`` from its readable source (``make tracker``).

The tracker must stay under 3 KB gzipped, so the served file is the source with comments and
whitespace removed by rjsmin (a development dependency). A test checks the two never drift.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "static_src" / "tracker.js"
TARGET = HERE / "static" / "microadjust_cms" / "js" / "tracker.js"
BANNER = "/* microadjust tracker; source: microadjust_cms/static_src/tracker.js */\n"


def minified_tracker() -> str:
    """The source, minified, behind a one-line banner naming the source."""
    import rjsmin

    return BANNER + rjsmin.jsmin(SOURCE.read_text(), keep_bang_comments=False) + "\n"


def main() -> None:
    TARGET.write_text(minified_tracker())
    print(f"wrote {TARGET.relative_to(HERE.parent)} ({TARGET.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
