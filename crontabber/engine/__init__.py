"""The engine: a runner's ticks (runner.py, tick.py), the one slot loop every attempt goes
through and the one place it is recorded (ledger.py); which jobs and slots are due
(plan.py, pure), claims (claims.py), how attempts run (executors.py, execution.py,
capture.py), dry runs (dryrun.py), what a tick did (report.py), re-runs and repairs."""
