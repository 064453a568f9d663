"""In-process control of the test commands: what they were called with, what must fail."""

CALLS = []  # one dict per call: command, run_time, last_success, options
FAILING = set()  # run_time ISO strings (or "*") for which `record` fails
SLOW = {}  # run_time ISO string -> seconds `record` takes for it


def reset():
    CALLS.clear()
    FAILING.clear()
    SLOW.clear()
