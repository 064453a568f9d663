"""Lint: the redesign's ceilings on crontabber/. No function above cyclomatic complexity 15
(radon), no module above 400 lines. Prints each breach; exit status 1 if any."""

import sys
from pathlib import Path

from radon.complexity import cc_visit

MAX_COMPLEXITY = 15
MAX_LINES = 400


def breaches(root: Path):
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = path.read_text()
        if source.count("\n") > MAX_LINES:
            yield f"{path}: {source.count(chr(10))} lines (at most {MAX_LINES})"
        for block in cc_visit(source):
            for item in [block, *getattr(block, "methods", [])]:
                if item.complexity > MAX_COMPLEXITY:
                    yield f"{path}:{item.lineno}: {item.name}: complexity {item.complexity} (at most {MAX_COMPLEXITY})"


if __name__ == "__main__":
    found = list(breaches(Path(sys.argv[1] if len(sys.argv) > 1 else "crontabber")))
    print("\n".join(found) or "crontabber/: every function within complexity 15, every module within 400 lines")
    sys.exit(1 if found else 0)
