"""What the benchmark scripts say of the machine they ran on (shared by all of them)."""

from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or '' where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
