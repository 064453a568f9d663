"""An attempt in a child process, for a ``"process": True`` job: the runner's side
(run_in_child: start it, capture its output, stop it at its timeout or the runner's stop
with SIGTERM to its process group, then SIGKILL after CRONTABBER_KILL_GRACE_SECONDS, so
even a job stuck in C code stops; read its exit status) and the child's side (main:
``python -m crontabber.engine.child COMMAND ARGS...``, or ``--task PATH KWARGS_JSON``
for a task, its return value printed; exit status 0 on success, 75 when it raised
crontabber.SkipRun, 1 on any other error).

The child inherits the runner's environment, secrets included, unless
CRONTABBER_CHILD_ENV names the variables it gets (see environment())."""

import ctypes
import fnmatch
import json
import os
import signal
import subprocess
import sys
import threading
import traceback

from .. import conf, logger
from ..outcomes import Attempt, Outcome
from .execution import CLOCK, Deadlines, OutputCapture, stopped

# Always passed: the child must load the same settings.
ALWAYS = ("DJANGO_SETTINGS_MODULE",)
SKIP_EXIT_STATUS = 75  # sysexits' EX_TEMPFAIL: the command skipped its slot
TASK = "--task"  # python -m crontabber.engine.child --task PATH KWARGS_JSON: a task in a child
PARENT = "CRONTABBER_RUNNER_PID"  # the runner's pid, in the child's environment


def environment() -> dict[str, str]:
    """The environment a child starts with: the runner's whole environment, or with
    CRONTABBER_CHILD_ENV (names or shell patterns such as "LC_*") only what it names."""
    allowed = conf.get("CRONTABBER_CHILD_ENV")
    if allowed is None:
        return dict(os.environ)
    if isinstance(allowed, str):
        allowed = allowed.split(",")
    patterns = [p.strip() for p in allowed if p.strip()] + list(ALWAYS)
    return {k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}


def child_command(cmd: str, argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "crontabber.engine.child", cmd, *argv]


def run_in_child(name: str, cmd: str, argv: list[str], timeout: float | None, deadlines: Deadlines) -> Attempt:
    capture, started = OutputCapture(name), CLOCK["now"]()
    # The child imports the same project: same settings module, same import path.
    env = {**environment(), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONUNBUFFERED": "1"}
    env[PARENT] = str(os.getpid())
    child = subprocess.Popen(
        child_command(cmd, argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,
    )
    stopped_by = _watch(child, capture, timeout, deadlines)
    output = capture.finish()
    if stopped_by:
        attempt = stopped(stopped_by, timeout, deadlines.stop_reason, CLOCK["now"]() - started)
    else:
        attempt = _exited(child.returncode, output)
    attempt.duration, attempt.output = CLOCK["now"]() - started, output
    return attempt


def _watch(child: subprocess.Popen, capture: OutputCapture, timeout, deadlines: Deadlines):
    """Its output captured line by line until it exits, or until its timeout or the
    runner's stop, which terminate it: then what stopped it."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")), daemon=True)
    reader.start()
    stopped_by = None
    with deadlines.running(timeout, in_process=False):
        while child.poll() is None and not stopped_by:
            while lines:
                capture.write(lines.pop(0))
            stopped_by = deadlines.expired()
            if stopped_by:
                _terminate(child)
            else:
                try:
                    child.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
    reader.join(timeout=5)
    for line in lines:
        capture.write(line)
    return stopped_by


def _exited(status: int, output: str) -> Attempt:
    """What a child's exit status says: success, skipped (SkipRun) or a failure."""
    if status == 0:
        return Attempt(Outcome.SUCCESS)
    last = output.rsplit("\n", 1)[-1] if output else ""
    if status == SKIP_EXIT_STATUS:
        return Attempt(Outcome.SKIPPED, error_value=last.removeprefix("SkipRun: "))
    return Attempt(
        Outcome.FAILURE, error_type="ExitStatus", error_value=f"exit status {status}: {last}", traceback=output
    )


def _terminate(child: subprocess.Popen) -> None:
    """SIGTERM to the child's process group; SIGKILL if it is still there after the grace."""
    grace = conf.get("CRONTABBER_KILL_GRACE_SECONDS")
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            logger.warning("child %s still running %s s after %s", child.pid, wait, signal.Signals(signum).name)


def _die_with_the_runner() -> None:
    """On Linux the child is killed when the runner that started it dies, so that a dead
    runner's slot, taken over by another, never runs twice at once. (Linux sends the signal
    when the starting *thread* ends: children are started from the tick's own thread.)"""
    parent = os.environ.get(PARENT, "")
    if not (parent.isdigit() and sys.platform.startswith("linux")):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # it died before that
        os._exit(1)


def main(argv: list[str]) -> int:
    _die_with_the_runner()
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from crontabber import SkipRun
    from crontabber.registry.tasks import load_task

    try:
        if argv[0] == TASK:
            value = load_task(argv[1]).call(**json.loads(argv[2]))
            print(value if value is None or isinstance(value, str) else json.dumps(value), flush=True)
        else:
            call_command(argv[0], *argv[1:])
    except SkipRun as skip:
        print(f"SkipRun: {skip}", file=sys.stderr, flush=True)
        return SKIP_EXIT_STATUS
    except CommandError as error:
        print(f"CommandError: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception:
        # Printed as Python would, but not left to sys.excepthook: an SDK hooked there
        # (Sentry) would report it a second time; the runner reports the failed attempt.
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
