"""The loops: bin/run_crontabber.sh (a process per tick) and `cronrun --loop` (one
long-lived process): they tick, survive a failing tick, stop cleanly on SIGTERM/SIGINT."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from crontabber.models import Control, Log
from tests.helpers import ROOT, child_env, manage, wait_for

LOOP = ROOT / "bin" / "run_crontabber.sh"
STUB = """#!/usr/bin/env bash
sleeper=""
on_term() {
    [ -n "$sleeper" ] && kill "$sleeper"
    echo "got TERM" >> "$STUB_LOG"; sleep 0.3; echo "finished" >> "$STUB_LOG"; exit 0
}
if [ -n "${STUB_SLEEP:-}" ]; then  # the trap comes first: the test signals once "tick" is logged
    trap on_term TERM
fi
n=$(( $(wc -l < "$STUB_LOG") + 1 ))
echo "tick $n $*" >> "$STUB_LOG"
if [ "$n" -eq 2 ]; then echo "tick failed" >&2; exit 3; fi
if [ -n "${STUB_SLEEP:-}" ]; then
    sleep "$STUB_SLEEP" & sleeper=$!
    wait "$sleeper"
fi
exit 0
"""


@pytest.fixture
def stub(tmp_path):
    script = tmp_path / "python-stub"
    script.write_text(STUB)
    script.chmod(0o755)
    log = tmp_path / "ticks.log"
    log.write_text("")
    return script, log


def start_loop(env):
    return subprocess.Popen(
        ["bash", str(LOOP)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_failing_tick_is_logged_and_the_loop_goes_on(stub):
    script, log = stub
    loop = start_loop({"PYTHON": str(script), "STUB_LOG": str(log), "CRONTABBER_INTERVAL": "1"})
    try:
        assert wait_for(lambda: len(log.read_text().splitlines()) >= 4, seconds=15, every=0.05)
    finally:
        loop.send_signal(signal.SIGTERM)
        _, stderr = loop.communicate(timeout=10)
    assert loop.returncode == 0
    assert "cronrun exited with status 3" in stderr
    assert log.read_text().splitlines()[0].endswith("manage.py cronrun")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_loop_after_the_current_tick_which_is_told_to_stop(stub, signum):
    script, log = stub
    loop = start_loop({"PYTHON": str(script), "STUB_LOG": str(log), "CRONTABBER_INTERVAL": "1", "STUB_SLEEP": "30"})
    assert wait_for(lambda: "tick 1" in log.read_text(), seconds=15, every=0.05)
    time.sleep(0.2)  # let the stub install its trap
    started = time.monotonic()
    loop.send_signal(signum)
    _, stderr = loop.communicate(timeout=10)
    assert loop.returncode == 0
    assert time.monotonic() - started < 5
    assert log.read_text().splitlines()[1:] == ["got TERM", "finished"]
    assert "stopped" in stderr


def test_a_signal_during_the_sleep_ends_the_loop_at_once(stub):
    script, log = stub
    loop = start_loop({"PYTHON": str(script), "STUB_LOG": str(log), "CRONTABBER_INTERVAL": "600"})
    assert wait_for(lambda: "tick 1" in log.read_text(), seconds=15, every=0.05)
    time.sleep(0.2)
    loop.send_signal(signal.SIGTERM)
    loop.communicate(timeout=5)
    assert loop.returncode == 0


def test_a_bad_interval_is_refused():
    result = subprocess.run(
        ["bash", str(LOOP)],
        env={**os.environ, "CRONTABBER_INTERVAL": "5m"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2 and "whole seconds" in result.stderr


def test_shell_scripts_pass_shellcheck():
    shellcheck = os.path.join(os.path.dirname(sys.executable), "shellcheck")
    scripts = [str(p) for p in (ROOT / "bin").glob("*.sh")] + [str(ROOT / ".ci" / "run")]
    result = subprocess.run([shellcheck, *scripts], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.mark.django_db(transaction=True)
def test_the_loop_runs_real_ticks(tmp_path):
    registry = json.dumps([{"name": "n", "cmd": "noop", "frequency": "5m"}])
    env = child_env(registry, PYTHON=sys.executable, CRONTABBER_INTERVAL="600")
    loop = subprocess.Popen(["bash", str(LOOP)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: Log.objects.filter(job__name="n", outcome="success").exists(), seconds=30, every=0.05)
    finally:
        loop.send_signal(signal.SIGTERM)
        loop.communicate(timeout=30)
    assert loop.returncode == 0


def start_cronrun_loop(env, *args):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "webapp" / "manage.py"), "cronrun", "--loop", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.django_db(transaction=True)
def test_cronrun_loop_ticks_on_the_clock_and_runs_each_slot_once():
    registry = json.dumps([{"name": "n", "cmd": "noop", "frequency": "5m"}])
    loop = start_cronrun_loop(child_env(registry), "--interval", "1", "--max-ticks", "3")
    _, stderr = loop.communicate(timeout=60)
    assert loop.returncode == 0, stderr
    assert Log.objects.filter(job__name="n", outcome="success").count() == 1  # the first tick; then not due
    last_tick = Control.load().last_tick
    # The ticks after the first start on a whole second (a multiple of the interval), give or
    # take the latency of a loaded machine.
    assert last_tick.timestamp() % 1 < 0.5


@pytest.mark.django_db(transaction=True)
def test_cronrun_loop_stops_at_once_on_sigterm_between_ticks():
    registry = json.dumps([{"name": "n", "cmd": "noop", "frequency": "5m"}])
    loop = start_cronrun_loop(child_env(registry), "--interval", "600")
    try:
        assert wait_for(lambda: Log.objects.filter(job__name="n", outcome="success").exists(), seconds=30, every=0.05)
        started = time.monotonic()
        loop.send_signal(signal.SIGTERM)
        _, stderr = loop.communicate(timeout=10)
    finally:
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 0 and time.monotonic() - started < 5
    assert "stopped on a signal" in stderr and "Traceback" not in stderr


def test_cronrun_loop_survives_a_database_that_is_down_and_says_so_in_one_line():
    env = child_env("[]", DATABASE_URL="postgres://postgres@127.0.0.1:9/nowhere")
    result = manage("cronrun", "--loop", "--interval", "0.1", "--max-ticks", "3", env=env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("crontabber: database error")]
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert result.returncode == 1 and "the last tick failed" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loop", "--job", "n"], "not with --job"),
        (["--loop", "--dry-run"], "not with --job or --dry-run"),
        (["--interval", "5"], "need --loop"),
        (["--loop", "--interval", "0"], "from 0.1 to 86400"),
    ],
)
def test_cronrun_loop_refuses_bad_options(args, message):
    result = manage("cronrun", *args, env=child_env(json.dumps([{"name": "n", "cmd": "noop", "frequency": "5m"}])))
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
