"""What the redesign promises a reader: the docs list exactly the settings and registry
keys the code reads, and a job's state changes are plain methods, testable without a
database."""

import re
from datetime import timedelta

from crontabber import conf
from crontabber.engine import child
from crontabber.engine.plan import Due, in_dependency_order, waiting_for
from crontabber.models import Job, retry_delay
from crontabber.outcomes import Attempt, Outcome
from crontabber.registry import JobSpec, keys
from crontabber.schedules import build_schedule
from tests.helpers import ROOT, at

CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
HOURLY = build_schedule(cron="0 * * * *")


def test_the_configuration_docs_list_every_setting_and_no_other():
    assert conf.table() in CONFIGURATION
    section = CONFIGURATION.split("\n## Settings\n")[1].split("\n## ")[0]
    documented = set(re.findall(r"^\| `(CRONTABBER_[A-Z_]+)` \|", section, re.M))
    assert documented == set(conf.SETTINGS)


def test_the_configuration_docs_list_every_registry_key():
    assert keys.key_table() in CONFIGURATION


def test_the_docs_index_links_every_page():
    index = ROOT / "docs" / "README.md"
    linked = {
        (index.parent / target).resolve() for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", index.read_text())
    }
    assert all(target.exists() for target in linked), [str(t) for t in linked if not t.exists()]
    pages = {page.resolve() for page in (ROOT / "docs").glob("*.md") if page != index}
    assert pages - linked == set(), "docs/README.md does not list these pages"


def test_every_crontabber_setting_the_code_reads_is_in_conf():
    read = set()
    for path in (ROOT / "crontabber").rglob("*.py"):
        read |= set(re.findall(r"\"(CRONTABBER_[A-Z_]+)\"", path.read_text()))
    environment = {child.PARENT}  # what a runner tells its child processes: not a setting
    assert read - environment <= set(conf.SETTINGS)


def test_a_success_moves_the_job_to_its_next_slot_and_clears_its_errors():
    job = Job(name="j", first_run=at("2026-05-01 00:00"), next_slot=at("2026-05-01 10:00"), error_count=2)
    job.apply_attempt(HOURLY, at("2026-05-01 10:00"), at("2026-05-01 10:01"), Attempt(Outcome.SUCCESS), now=None)
    assert (job.last_success, job.next_slot, job.next_run) == (at("2026-05-01 10:00"),) + (at("2026-05-01 11:00"),) * 2
    assert (job.error_count, job.last_error, job.last_run) == (0, "", at("2026-05-01 10:01"))


def test_a_failure_keeps_the_slot_and_backs_off():
    job = Job(name="j", first_run=at("2026-05-01 00:00"), next_slot=at("2026-05-01 10:00"))
    failed = Attempt(Outcome.FAILURE, error_type="RuntimeError", error_value="boom")
    job.apply_attempt(HOURLY, at("2026-05-01 10:00"), at("2026-05-01 10:01"), failed, now=at("2026-05-01 10:02"))
    assert (job.next_slot, job.error_count, job.last_error) == (at("2026-05-01 10:00"), 1, "RuntimeError: boom")
    assert job.next_run == at("2026-05-01 10:02") + retry_delay(1) and job.last_success is None


def test_an_interrupted_attempt_changes_nothing_but_the_last_run():
    job = Job(name="j", first_run=at("2026-05-01 00:00"), next_slot=at("2026-05-01 10:00"), next_run=None)
    job.apply_attempt(HOURLY, at("2026-05-01 10:00"), at("2026-05-01 10:01"), Attempt(Outcome.INTERRUPTED), now=None)
    assert (job.next_slot, job.error_count, job.next_run) == (at("2026-05-01 10:00"), 0, None)


def test_a_skipped_slot_is_handled_and_remembered():
    job = Job(name="j", first_run=at("2026-05-01 00:00"), next_slot=at("2026-05-01 10:00"))
    job.apply_attempt(HOURLY, at("2026-05-01 10:00"), at("2026-05-01 10:01"), Attempt(Outcome.SKIPPED), now=None)
    assert (job.last_skipped, job.next_slot, job.last_success) == (at("2026-05-01 10:00"), at("2026-05-01 11:00"), None)


def test_the_back_off_doubles_up_to_its_cap(settings):
    settings.CRONTABBER_RETRY_DELAY_SECONDS, settings.CRONTABBER_RETRY_MAX_DELAY_SECONDS = 60, 300
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [timedelta(seconds=s) for s in (60, 120, 240, 300)]


def spec(name, *depends_on):
    return JobSpec(name=name, cmd="record", schedule=HOURLY, depends_on=depends_on)


def test_due_jobs_run_after_the_due_jobs_they_depend_on():
    due = [Due(spec("report", "load"), False), Due(spec("other"), False), Due(spec("load"), False)]
    assert [item.spec.name for item in in_dependency_order(due)] == ["load", "report", "other"]


def test_a_slot_waits_for_its_dependencies_same_slot():
    job = spec("report", "load", "clean")
    successes = {"load": at("2026-05-01 10:00"), "clean": at("2026-05-01 09:00")}
    assert waiting_for(job, at("2026-05-01 10:00"), successes) == (
        "waiting for clean to succeed for 2026-05-01T10:00:00+00:00"
    )
    assert waiting_for(job, at("2026-05-01 09:00"), successes) == ""
