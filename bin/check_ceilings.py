"""Lint: the shape of crontabber/ (make lint). No function above cyclomatic complexity 10
(radon), no class above 200 lines, no module above 300, no block of six or more lines
written twice, no private name imported from another module. Prints each breach; exit
status 1 if any. Migrations are generated: left out."""

import ast
import sys
from collections import defaultdict
from pathlib import Path

from radon.complexity import cc_visit

MAX_COMPLEXITY = 10
MAX_CLASS_LINES = 200
MAX_MODULE_LINES = 300
REPEATED_LINES = 6
# Lines too common to make a repeated block on their own.
TRIVIAL = {"", ")", "]", "}", "),", "],", "},", '"""', "else:", "try:", "finally:", "return", "pass"}


def modules(root: Path):
    for path in sorted(root.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, path.read_text()


def size_and_complexity(path: Path, source: str):
    lines = source.count("\n")
    if lines > MAX_MODULE_LINES:
        yield f"{path}: {lines} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
            yield f"{path}:{node.lineno}: class {node.name}: {node.end_lineno - node.lineno + 1} lines"
    for block in cc_visit(source):
        for item in [block, *getattr(block, "methods", [])]:
            if item.complexity > MAX_COMPLEXITY:
                yield f"{path}:{item.lineno}: {item.name}: complexity {item.complexity} (at most {MAX_COMPLEXITY})"


def private_imports(path: Path, source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"{path}:{node.lineno}: imports the private name {alias.name} from {node.module or '.'}"


def repeated_blocks(sources):
    """Runs of REPEATED_LINES meaningful lines (stripped, comments and trivial lines left
    out) found in two places."""
    seen = defaultdict(list)
    for path, source in sources:
        numbered = [
            (number, line.strip())
            for number, line in enumerate(source.splitlines(), 1)
            if line.strip() not in TRIVIAL and not line.strip().startswith("#")
        ]
        for start in range(len(numbered) - REPEATED_LINES + 1):
            window = tuple(text for _, text in numbered[start : start + REPEATED_LINES])
            seen[window].append((path, numbered[start][0]))
    reported = set()
    for places in seen.values():
        distinct = sorted(set(places))
        if len(distinct) > 1 and distinct[0] not in reported:
            reported.update(distinct)
            yield "repeated block: " + " and ".join(f"{path}:{line}" for path, line in distinct)


def breaches(root: Path):
    sources = list(modules(root))
    for path, source in sources:
        yield from size_and_complexity(path, source)
        yield from private_imports(path, source)
    yield from repeated_blocks(sources)


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "crontabber")
    found = list(breaches(root))
    print("\n".join(found) or f"{root}/: within every ceiling (complexity, class and module size, repeats, privacy)")
    sys.exit(1 if found else 0)
