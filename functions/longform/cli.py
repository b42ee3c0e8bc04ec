"""``longform``: generate, watch, list, resume and edit jobs on the embedded pipeline, or serve the web page.

Exit codes:
    0    the job completed (``generate``, ``resume``, ``edit``), or the command showed what it was asked
    1    the job failed or was cancelled (the reason is on stderr), or an unexpected error
    2    invalid input: a bad option or request field, a bad ``LONGFORM_*`` setting, an unknown or
         ambiguous job id; the message names the field, and no job and no files were made
    3    ``resume`` of a job another live process is running: it was not started a second time
    130  interrupted (Ctrl-C); the job stays resumable: ``longform resume JOB_ID``

Stdout carries the result: the final video's path (``done in …: PATH``), the tables of
``status`` and ``list``, and the progress of a job being made. Stderr carries everything that
went wrong: errors, the reason a job failed, the resume hint after Ctrl-C, log warnings. When a
stream is not a terminal nothing is wrapped or cut: each message is one line, each table row too,
and job ids are never shortened (a shortened one, ``d3153c2f32e4``, is accepted wherever a job id
is: any unique prefix of at least 4 characters).

With ``--json`` stdout is exactly one JSON document, and all human output goes to stderr:

- the command's result: the job summary of ``generate``/``resume``/``edit`` (``jobId``, ``version``, ``status``,
  ``output``, ``durationSeconds``, ``segments``, ``timings``, ``cost``, ``error``; a job that ran and failed
  or was cancelled exits 1 with its reason in ``error``), the job of ``status``, the jobs of ``list``,
  the figures of ``stats`` (``Stats.to_json()``: ``jobLatency``, ``scenesCompleted``, ``costByUser``…);
- or, when there is no result (bad input, no such job, Ctrl-C, an unexpected error),
  ``{"error": {"status", "message", "field"}}`` with the callable protocol's status names
  (``INVALID_ARGUMENT`` and ``NOT_FOUND`` exit 2; ``CANCELLED`` for Ctrl-C exits 130 and adds
  ``jobId`` once a job exists; ``INTERNAL`` exits 1) and ``field`` the option, request field or
  setting at fault, or null.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import bootstrap, stats
from .callable_protocol import callable_error
from .config import JOBS_COLLECTION, Settings
from .errors import (
    BudgetExhausted,
    InvalidRequest,
    InvalidSetting,
    JobBusy,
    JobNotFound,
    JobNotQueued,
    PermissionDenied,
    TooManyActiveJobs,
    TransientError,
    Unauthenticated,
)
from .job import Job, Status, iso_time
from .ports import JobStore
from .prices import Cost
from .processes import gone

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
REFRESH_SECONDS = 0.1
ALL_JOBS = 2**31 - 1  # ``stats`` reads every job: the largest limit a Firestore query takes (an Int32)
UNWRAPPED = 1 << 16  # the width of a console that is not a terminal: lines are never wrapped or cut

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Streams:
    """Where output goes: results on ``out`` (stdout), errors and diagnostics on ``err`` (stderr)."""

    out: Console
    err: Console
    json: bool

    @property
    def human(self) -> Console:
        """Progress and the final ``done`` line: stdout, unless stdout is kept for the JSON."""
        return self.err if self.json else self.out

    def print_json(self, document: Any) -> None:
        print(json.dumps(document), flush=True)


class Interrupted(Exception):
    """Ctrl-C; once the job exists, it stays resumable."""

    def __init__(self, job_id: str | None = None) -> None:
        super().__init__(f"interrupted; continue with: longform resume {job_id}" if job_id else "interrupted")
        self.job_id = job_id


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    streams = Streams(_console(stderr=False), _console(stderr=True), json="--json" in argv)
    _setup_logging(streams.err)
    try:
        args = _parser().parse_args(argv)
        streams = Streams(streams.out, streams.err, json=args.json)
        return int(args.command(args, streams))
    except _UsageError as exc:  # argparse's own message, after its usage line
        if not streams.json:
            exc.parser.print_usage(sys.stderr)
        return _report(streams, exc)
    except KeyboardInterrupt:  # before a job exists: nothing to resume
        return _report(streams, Interrupted())
    except Exception as exc:
        return _report(streams, exc)


# -- errors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """An error as the CLI reports it: exit code, callable-style status, message, field at fault."""

    code: int
    status: str
    message: str
    field: str | None = None
    job_id: str | None = None  # an interrupted job's, to resume

    def body(self) -> dict[str, Any]:
        error = {"status": self.status, "message": self.message, "field": self.field}
        return {"error": error | ({"jobId": self.job_id} if self.job_id else {})}


def _failure(exc: BaseException) -> Failure:
    if isinstance(exc, _UsageError):
        return Failure(EXIT_INVALID, "INVALID_ARGUMENT", str(exc), exc.field)
    if isinstance(exc, InvalidSetting):  # a LONGFORM_* variable: here the user's input, not a deployment's
        return Failure(EXIT_INVALID, "INVALID_ARGUMENT", str(exc), exc.setting)
    if isinstance(exc, Interrupted):
        return Failure(EXIT_INTERRUPTED, "CANCELLED", str(exc), job_id=exc.job_id)
    if isinstance(exc, JobBusy):
        return Failure(EXIT_BUSY, "FAILED_PRECONDITION", str(exc), job_id=exc.job_id)
    if isinstance(exc, InvalidRequest | JobNotFound):
        error = callable_error(exc)
        return Failure(EXIT_INVALID, error.status, error.message, getattr(exc, "field", None))
    if isinstance(exc, Unauthenticated | PermissionDenied | TooManyActiveJobs | BudgetExhausted | JobNotQueued):
        error = callable_error(exc)  # these it maps without logging
        return Failure(EXIT_FAILED, error.status, error.message)
    if isinstance(exc, TransientError):
        return Failure(EXIT_FAILED, "UNAVAILABLE", str(exc))
    log.error("unexpected error", exc_info=exc)  # the trace, on stderr
    return Failure(EXIT_FAILED, "INTERNAL", str(exc) or type(exc).__name__)


def _report(streams: Streams, exc: BaseException) -> int:
    """Say what went wrong on stderr and, with --json, as the one JSON object on stdout."""
    fail = _failure(exc)
    if isinstance(exc, _UsageError):
        line = Text(f"{exc.parser.prog}: error: {exc}")
    elif fail.status == "INVALID_ARGUMENT":
        line = Text.assemble(("invalid input", "red"), f" — {fail.message}")
    else:
        line = Text(fail.message, style="red")
    newline = isinstance(exc, Interrupted) and streams.err.is_terminal  # after the terminal's ^C
    streams.err.print(Text("\n") + line if newline else line, soft_wrap=True)
    if streams.json:
        streams.print_json(fail.body())
    return fail.code


# -- commands -------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace, streams: Streams) -> int:
    # Everything is checked before anything is written: a bad request leaves no job and no files.
    fields = _request_fields(args)
    settings = _settings(args)
    if args.concurrency is not None:
        try:
            settings = settings.with_(concurrency=args.concurrency)
        except InvalidSetting as exc:
            raise InvalidRequest("--concurrency", exc.rule) from None
    return _run_and_report(settings, fields, None, args, streams)


def _edit(args: argparse.Namespace, streams: Streams) -> int:
    settings = _settings(args)
    if not settings.db_path.exists():
        raise JobNotFound(args.job_id)
    if args.dry_run:
        local = bootstrap.local(settings)
        job = local.service.find(bootstrap.LOCAL_USER, args.job_id)
        answer = local.service.edit(bootstrap.LOCAL_USER, _edit_fields(args, job) | {"dryRun": True})
        if streams.json:
            streams.print_json(answer)
        if not job.video_request.chain:  # no joins to choose about: both plans are the same
            streams.human.print(_plan_words(answer["plans"]["keep"]), soft_wrap=True)
            return EXIT_OK
        for choice, plan in answer["plans"].items():
            streams.human.print(f"continuity {choice}: {_plan_words(plan)}", soft_wrap=True)
        return EXIT_OK
    job = bootstrap.local(settings).service.find(bootstrap.LOCAL_USER, args.job_id)
    return _run_and_report(settings, None, job.job_id, args, streams, edit=_edit_fields(args, job))


def _edit_fields(args: argparse.Namespace, job: Job) -> dict[str, Any]:
    """The edit as the callable receives it, from the options (scene numbers from 1, as shown)."""
    count = len(job.segments)

    def scene(number: int, option: str) -> int:
        if not 1 <= number <= count:
            raise InvalidRequest(option, f"must name a scene of the job: 1 to {count}, got {number}")
        return number - 1

    order = [scene(int(n), "--order") for n in args.order.split(",")] if args.order else list(range(count))
    if len(set(order)) != len(order):
        raise InvalidRequest("--order", "must name each scene at most once")
    deleted = {scene(n, "--delete") for n in args.delete or []}
    entries: list[dict[str, Any]] = [{"from": i} for i in order if i not in deleted]
    by_scene = {entry["from"]: entry for entry in entries}
    for option, pairs, name in (
        ("--prompt", args.prompt, "prompt"),
        ("--seed", args.seed, "seed"),
        ("--negative-prompt", args.negative_prompt, "negativePrompt"),
    ):
        for number, value in pairs or []:
            index = scene(_number(number, option), option)
            if index not in by_scene:
                raise InvalidRequest(option, f"scene {number} is deleted or left out of --order")
            by_scene[index][name] = _number(value, option) if name == "seed" else value
    for number in args.regenerate or []:
        index = scene(number, "--regenerate")
        if index not in by_scene:
            raise InvalidRequest("--regenerate", f"scene {number} is deleted or left out of --order")
        by_scene[index]["regenerate"] = True
    for number, prompt in reversed(args.insert_after or []):  # so that two after one scene keep their order
        after = _number(number, "--insert-after")
        position = _position(entries, scene(after, "--insert-after")) + 1 if after else 0
        entries.insert(position, {"prompt": prompt})
    return {"jobId": job.job_id, "scenes": entries, "continuity": args.continuity}


def _position(entries: list[dict[str, Any]], index: int) -> int:
    found = [i for i, entry in enumerate(entries) if entry.get("from") == index]
    if not found:
        raise InvalidRequest("--insert-after", f"scene {index + 1} is deleted or left out of --order")
    return found[0]


def _number(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(option, f"must be a whole number, got {text!r}") from None


def _plan_words(plan: dict[str, Any]) -> str:
    made, reused = len(plan["generate"]), len(plan["reuse"])
    cuts = f", {len(plan['cuts'])} cut(s) at changed joins" if plan["cuts"] else ""
    return (
        f"{made} scene(s) to make ({plan['seconds']}s, about {_money(plan['costUsd'])}), {reused} reused{cuts}; "
        + "; ".join(plan["changes"])
    )


def _resume(args: argparse.Namespace, streams: Streams) -> int:
    settings = _settings(args)
    if not settings.db_path.exists():
        raise JobNotFound(args.job_id)
    return _run_and_report(settings, None, args.job_id, args, streams)


def _status(args: argparse.Namespace, streams: Streams) -> int:
    settings = _settings(args)
    if not settings.db_path.exists():
        raise JobNotFound(args.job_id)
    job = bootstrap.local(settings).service.find(bootstrap.LOCAL_USER, args.job_id)
    if args.json:
        streams.print_json(job.to_json() | {"interrupted": job.is_interrupted(gone=gone)})
        return EXIT_OK
    out = streams.out
    version = f"  version {job.version}" if job.version > 1 else ""
    out.print(f"job {job.job_id}{version}  {_status_of(job)}  {job.progress}%  {_message_of(job)}", soft_wrap=True)
    table = _table()
    table.add_column("scene", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("prompt")
    table.add_column("uri", overflow="fold")  # folded over lines on a terminal, never cut
    for seg in job.segments:
        table.add_row(str(seg.index + 1), seg.status, str(seg.attempts), Text(seg.prompt), Text(seg.uri or ""))
    out.print(table, crop=False)
    if job.video_uri:
        out.print(Text(f"video: {job.video_uri}"), soft_wrap=True)
    if job.cost:
        out.print(Text(f"cost: {_spent_words(job.cost)}"), soft_wrap=True)
    return EXIT_OK


def _list(args: argparse.Namespace, streams: Streams) -> int:
    settings = _settings(args)
    jobs = bootstrap.local(settings).service.recent(bootstrap.LOCAL_USER, 50) if settings.db_path.exists() else []
    if args.json:
        streams.print_json([job.to_json() | {"interrupted": job.is_interrupted(gone=gone)} for job in jobs])
        return EXIT_OK
    if not jobs:
        streams.out.print("no jobs")
        return EXIT_OK
    table = _jobs_table(jobs)
    # Full ids, whatever the width (a cut one names no job): only the prompts shrink to fit, and
    # where even the other columns do not fit, the table is wider than the terminal, which wraps it.
    needed = Measurement.get(streams.out, streams.out.options.update_width(UNWRAPPED), _jobs_table(jobs, False))
    if streams.out.width < needed.maximum + 3:  # and the prompt's "…"
        table.width = needed.maximum + 3
    streams.out.print(table, crop=False)
    return EXIT_OK


def _jobs_table(jobs: list[Job], prompts: bool = True) -> Table:
    table = _table()
    table.add_column("job", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("scenes", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    if prompts:
        table.add_column(Text("first prompt", no_wrap=True, overflow="ellipsis"))
    now = datetime.now(UTC)
    for job in jobs:
        cells: list[str | Text] = [
            job.job_id,
            _status_of(job),
            f"{job.progress}%",
            str(len(job.segments)),
            _age(job.timings["createdAt"], now),
        ]
        if prompts:
            cells.append(Text(job.segments[0].prompt[:40], no_wrap=True, overflow="ellipsis"))
        table.add_row(*cells)
    return table


def _status_of(job: Job) -> str:
    """The job's status, or ``interrupted`` when it is unfinished and no process runs it."""
    return "interrupted" if job.is_interrupted(gone=gone) else job.status.value


def _message_of(job: Job) -> str:
    if job.is_interrupted(gone=gone):
        return f"Interrupted at {job.progress}%: continue with longform resume {job.job_id}"
    return job.status_message()


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def _age(created_at: str, now: datetime) -> str:
    """How long ago, as ``40s ago``, ``5m ago``, ``3h ago``, ``2d ago``."""
    try:
        seconds = max(0, int((now - datetime.fromisoformat(created_at)).total_seconds()))
    except ValueError:
        return created_at
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _serve(args: argparse.Namespace, streams: Streams) -> int:
    from . import local_server  # Flask and the server only for this command

    settings = _settings(args)

    def ready(url: str) -> None:
        streams.out.print(f"Longform on {url} (jobs in {settings.data_dir}; Ctrl-C stops)", soft_wrap=True)

    try:
        local_server.serve(settings, port=args.port, on_ready=ready)
    except OSError as exc:  # cannot bind (werkzeug itself reports a port in use, and exits 1)
        streams.err.print(
            Text(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", style="red"), soft_wrap=True
        )
        return EXIT_FAILED
    return EXIT_OK


# -- stats -----------------------------------------------------------------------------------------------


def _stats(args: argparse.Namespace, streams: Streams) -> int:
    """The figures of stats.py (defined there, once) over every job of the data dir, or of a
    Firestore project's ``videoJobs``."""
    figures = stats.compute(_counted_jobs(args), args.since, args.user)
    if args.json:
        streams.print_json(figures.to_json())
        return EXIT_OK
    _show_stats(figures, streams.out)
    return EXIT_OK


def _counted_jobs(args: argparse.Namespace) -> list[Job]:
    """Every job of every user (or of ``--user``): stats is the operator's view, not one caller's."""
    if args.firestore is None:
        settings = _settings(args)
        if not settings.db_path.exists():  # nothing made here yet, and reading makes no files
            return []
        return bootstrap.local(settings).pipeline.jobs.list(args.user, ALL_JOBS)
    if args.data_dir is not None:
        raise InvalidRequest(
            "--firestore", "reads a Firestore project, not a data dir: give one of --firestore and --data-dir"
        )
    return _firestore_jobs(args.firestore).list(args.user, ALL_JOBS)


def _firestore_jobs(project: str) -> JobStore:
    """The ``videoJobs`` of ``project`` (empty: GOOGLE_CLOUD_PROJECT's), as the functions read them:
    with Application Default Credentials, or on the emulator when FIRESTORE_EMULATOR_HOST is set."""
    from google.auth.exceptions import DefaultCredentialsError

    from .cloud.composition import Cloud  # the cloud adapters (and Firestore's client) only for --firestore

    settings = Settings.from_env(only=["project"])
    if project:
        settings = settings.with_(project=project)
    if settings.project.startswith("demo-") and not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        raise InvalidRequest(
            "--firestore",
            f"name the project (--firestore PROJECT, or GOOGLE_CLOUD_PROJECT): {settings.project} exists only on "
            "the emulators, and FIRESTORE_EMULATOR_HOST is not set",
        )
    try:
        return Cloud(settings).jobs
    except DefaultCredentialsError:
        raise Unauthenticated(
            f"no Google credentials to read {JOBS_COLLECTION} of {settings.project}: run "
            "gcloud auth application-default login (or set FIRESTORE_EMULATOR_HOST for the emulator)"
        ) from None


def _show_stats(s: stats.Stats, out: Console) -> None:
    scope = (f"user {s.user}" if s.user is not None else "all users") + (
        f", created since {s.since}" if s.since else ""
    )
    if not s.jobs:
        out.print(Text(f"no jobs ({scope})"), soft_wrap=True)
        return
    out.print(Text(f"{s.jobs} job(s) of {scope}"), soft_wrap=True)
    for table in (_status_table(s), _latency_table(s), _rates_table(s)):
        out.print()
        out.print(table, crop=False)
    out.print()
    out.print(f"quota hits: {s.quota_hits} (calls refused for quota, 429 / RESOURCE_EXHAUSTED; each was retried)")
    out.print()
    out.print(_cost_table(s), crop=False)
    if s.estimated:
        out.print(
            "estimate: jobs made by the preview renderer are priced as if made on Veo; nothing was billed for them"
        )


def _status_table(s: stats.Stats) -> Table:
    table = _table()
    table.add_column("status", no_wrap=True)
    table.add_column("jobs", justify="right", no_wrap=True)
    lifecycle = [status.value for status in Status]  # in the order a job passes them
    for status, n in sorted(s.by_status.items(), key=lambda item: lifecycle.index(item[0])):
        table.add_row(status, str(n))
    table.add_row("all", str(s.jobs))
    return table


def _latency_table(s: stats.Stats) -> Table:
    table = _table()
    table.add_column("latency", no_wrap=True)
    for name in ("count", "p50", "p95", "max"):
        table.add_column(name, justify="right", no_wrap=True)
    for label, figure in (
        ("job, queued → completed", s.job_latency),
        ("scene, started → made", s.scene_latency),
        ("stitch, started → completed", s.stitch_latency),
    ):
        table.add_row(label, str(figure.count), *(_seconds_words(v) for v in (figure.p50, figure.p95, figure.max)))
    return table


def _rates_table(s: stats.Stats) -> Table:
    table = _table()
    table.add_column("success and failure", no_wrap=True)
    for name in ("count", "of", "rate"):
        table.add_column(name, justify="right", no_wrap=True)
    for label, rate in (
        ("scenes made at the first attempt", s.scenes_first_attempt),
        ("scenes made in the end", s.scenes_completed),
        ("stitches completed", s.stitches_completed),
        ("jobs failed", s.jobs_failed),
    ):
        table.add_row(label, str(rate.done), str(rate.of), _percent(rate.rate))
    for step, n in s.failures_by_step.items():
        table.add_row(Text(f"  at {step}"), str(n), "", "")
    return table


def _cost_table(s: stats.Stats) -> Table:
    table = _table()
    table.add_column("user", no_wrap=True)
    table.add_column("cost (estimate)" if s.estimated else "cost", justify="right", no_wrap=True)
    for user, amount in s.cost_by_user.items():
        table.add_row(Text(user), _money(amount))
    table.add_row("all users", _money(s.cost_usd))
    return table


def _seconds_words(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``4m 05s``, ``2h 03m``; ``–`` when there is nothing to measure."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


# -- running with progress ---------------------------------------------------------------------------


def _run_and_report(
    settings: Settings,
    fields: dict[str, Any] | None,
    job_id: str | None,
    args: argparse.Namespace,
    streams: Streams,
    edit: dict[str, Any] | None = None,
) -> int:
    """Start a new job (from the request ``fields``), resume ``job_id`` or, with ``edit``, make
    its next version, in a worker thread, and show every change to it as it happens."""
    human = streams.human
    updates: queue.Queue[Job] = queue.Queue()
    local = bootstrap.local(settings, on_update=updates.put)
    started = time.monotonic()
    if job_id is None:
        ref = local.service.trigger(bootstrap.LOCAL_USER, fields)
        job = local.service.job(bootstrap.LOCAL_USER, ref["jobId"])
        human.print(
            f"job {job.job_id}: {len(job.segments)} scene(s) × {job.video_request.segment_seconds}s"
            + (f", {_estimate_words(job.cost)}" if job.cost else ""),
            soft_wrap=True,
        )
    elif edit is not None:
        job = local.service.find(bootstrap.LOCAL_USER, job_id)
        answer = local.service.edit(bootstrap.LOCAL_USER, edit)
        job = local.service.job(bootstrap.LOCAL_USER, job.job_id)
        human.print(f"job {job.job_id} version {job.version}: {_plan_words(answer['plan'])}", soft_wrap=True)
    else:
        job = local.service.find(bootstrap.LOCAL_USER, job_id)
        human.print(f"resuming job {job.job_id} ({job.status}, {job.progress}%)")
        if job.status in (Status.QUEUED, Status.GENERATING, Status.STITCHING, Status.FAILED):
            local.service.resume(bootstrap.LOCAL_USER, {"jobId": job.job_id}, unfinished=True)
    finished = local.engine.finished.get(job.job_id) or _already_over()
    try:
        _watch(job, updates, finished, human)
    except KeyboardInterrupt:
        return _report(streams, Interrupted(job.job_id))
    job = local.pipeline.jobs.get(job.job_id)
    output: Path | None = None
    if job.status is Status.COMPLETED and job.video_uri:
        output = _deliver(local, job.video_uri, args.out)
        human.print(
            Text.assemble(("done", "green"), f" in {time.monotonic() - started:.1f}s: {output}"), soft_wrap=True
        )
    else:
        reason = f"job {job.status}{_step(job)}: {job.error or job.status_message()}"
        streams.err.print(Text(reason, style="red"), soft_wrap=True)
    if job.cost:
        human.print(Text(f"cost: {_spent_words(job.cost)}"), soft_wrap=True)
    if streams.json:
        streams.print_json(_summary(job, output))
    return EXIT_OK if job.status is Status.COMPLETED else EXIT_FAILED


def _step(job: Job) -> str:
    return f" (step {job.error_step})" if job.error_step else ""


def _already_over() -> threading.Event:
    """A job with nothing to run (resumed when final): its watch ends at once."""
    over = threading.Event()
    over.set()
    return over


def _watch(job: Job, updates: queue.Queue[Job], finished: threading.Event, console: Console) -> None:
    """Show each state the job passes through: a bar on a terminal, plain lines otherwise."""

    def changes() -> Iterator[Job]:
        yield job
        while not finished.is_set() or not updates.empty():
            try:
                yield updates.get(timeout=REFRESH_SECONDS)
            except queue.Empty:
                continue

    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(job.status_message(), total=100, completed=job.progress)
            for seen in changes():
                bar.update(task, completed=seen.progress, description=seen.status_message())
                bar.refresh()
        return
    last = None
    for seen in changes():
        if seen.status in (Status.FAILED, Status.CANCELLED):
            continue  # the reason goes to stderr when the watch ends
        line = f"[{seen.progress:3d}%] {seen.status_message()}"
        if line != last:
            console.print(line, markup=False)
            last = line


def _deliver(local: bootstrap.Local, video_uri: str, out: Path | None) -> Path:
    with local.pipeline.blobs.local_path(local.pipeline.blobs.key_of(video_uri)) as path:
        if out is None:
            return path
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        return out.resolve()


def _summary(job: Job, output: Path | None) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "version": job.version,
        "status": job.status.value,
        "output": str(output) if output else None,
        "durationSeconds": _duration(output) if output else None,
        "segments": [seg.model_dump(mode="json") for seg in job.segments],
        "timings": job.timings,
        "cost": job.cost.model_dump(mode="json") if job.cost else None,
        "error": job.error,
    }


def _estimate_words(cost: Cost) -> str:
    """``about $3.61 on veo-3.1-fast-generate-001 (…)``: what the job would cost in the cloud."""
    where = " in the cloud; nothing is billed here" if cost.estimated else ""
    return f"about {_money(cost.estimate_usd)} on {cost.priced_as}{where}"


def _spent_words(cost: Cost) -> str:
    spent = f"{_money(cost.total_usd)} (scenes {_money(cost.scenes_usd)}, stitch {_money(cost.stitch_usd)})"
    prices = f"{cost.priced_as} and the {cost.stitch} stitch at the prices of {cost.prices_as_of}"
    if cost.estimated:
        return f"would be {spent} in the cloud, {prices}; nothing is billed here"
    return f"{spent} spent of {_money(cost.estimate_usd)} estimated, {prices}"


def _money(amount: float) -> str:
    """Dollars and cents; a stitch's fraction of a cent keeps its own digits."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def _duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return round((container.duration or 0) / 1_000_000, 3)


# -- consoles -----------------------------------------------------------------------------------------


def _console(stderr: bool) -> Console:
    """A console on stdout or stderr. On a terminal rich fits output to its width; anywhere else
    (a pipe, a file) nothing is wrapped or cut, so a long path or message stays on one line."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console.width = UNWRAPPED
        console.soft_wrap = True
    return console


def _setup_logging(err: Console) -> None:
    handler: logging.Handler
    if err.is_terminal:
        handler = RichHandler(console=err, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))  # rich shows the time and level itself
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


# -- arguments ------------------------------------------------------------------------------------------


def _request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The request as the callable would receive it; absent options keep the validator's defaults."""
    prompts = list(args.prompts)
    if args.prompts_file is not None:
        prompts += _read_prompts_file(args.prompts_file)
    fields: dict[str, Any] = {
        "prompts": prompts,
        "segmentSeconds": args.segment_seconds,
        "aspectRatio": args.aspect_ratio,
        "resolution": args.resolution,
        "chain": False if args.no_chain else None,
        "generateAudio": False if args.no_audio else None,
        "seed": args.seed,
        "negativePrompt": args.negative_prompt,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _read_prompts_file(path: Path) -> list[str]:
    """One prompt a line; blank lines and lines starting with '#' are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest("--prompts-file", f"cannot be read: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    return settings.with_(data_dir=args.data_dir) if args.data_dir else settings


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, help="where jobs and files live (env LONGFORM_DATA_DIR, default ./.longform)"
    )
    common.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout (the result, or the error); human output on stderr",
    )

    parser = _Parser(prog="longform", description="Turn a list of scene prompts into one long video.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", parents=[common], help="make a video from prompts")
    gen.add_argument("prompts", nargs="*", metavar="PROMPT", help="one scene each, in order")
    gen.add_argument("--prompts-file", type=Path, metavar="FILE", help="one prompt per line; '#' starts a comment")
    gen.add_argument("--segment-seconds", type=int, metavar="N", help="4, 6 or 8 (default 8)")
    gen.add_argument("--aspect-ratio", metavar="R", help="16:9 or 9:16 (default 16:9)")
    gen.add_argument("--resolution", metavar="R", help="720p or 1080p (default 720p)")
    gen.add_argument("--no-chain", action="store_true", help="independent scenes, made concurrently")
    gen.add_argument("--no-audio", action="store_true", help="no audio track")
    gen.add_argument("--seed", type=int, metavar="N", help="0–4294967295")
    gen.add_argument("--negative-prompt", metavar="TEXT", help="what to keep out of every scene")
    gen.add_argument("--concurrency", type=int, metavar="N", help="scenes made at once with --no-chain (default 4)")
    gen.add_argument("--out", type=Path, metavar="FILE", help="copy the video here (default: under the data dir)")
    gen.set_defaults(command=_generate)

    status = sub.add_parser("status", parents=[common], help="show one job")
    status.add_argument("job_id", metavar="JOB_ID")
    status.set_defaults(command=_status)

    listing = sub.add_parser("list", parents=[common], help="list jobs, newest first")
    listing.set_defaults(command=_list)

    resume = sub.add_parser("resume", parents=[common], help="finish a job that was interrupted")
    resume.add_argument("job_id", metavar="JOB_ID")
    resume.add_argument("--out", type=Path, metavar="FILE", help="copy the video here (default: under the data dir)")
    resume.set_defaults(command=_resume)

    edit = sub.add_parser(
        "edit",
        parents=[common],
        help="make a new version of a job: only the scenes the edit changes are made",
        description="Scene numbers are those of the job's current version, from 1 (longform status shows them). "
        "Unchanged scenes are reused; a changed scene is made again.",
    )
    edit.add_argument("job_id", metavar="JOB_ID")
    edit.add_argument("--prompt", nargs=2, action="append", metavar=("N", "TEXT"), help="a new prompt for scene N")
    edit.add_argument("--seed", nargs=2, action="append", metavar=("N", "SEED"), help="a new seed for scene N")
    edit.add_argument(
        "--negative-prompt", nargs=2, action="append", metavar=("N", "TEXT"), help="a new negative prompt for scene N"
    )
    edit.add_argument("--regenerate", type=int, action="append", metavar="N", help="make scene N again (a new seed)")
    edit.add_argument(
        "--insert-after", nargs=2, action="append", metavar=("N", "PROMPT"), help="a new scene after scene N (0: first)"
    )
    edit.add_argument("--delete", type=int, action="append", metavar="N", help="leave scene N out")
    edit.add_argument("--order", metavar="N,N,…", help="the scenes in their new order, e.g. 2,1,3")
    edit.add_argument(
        "--continuity",
        choices=("keep", "regenerate"),
        default="keep",
        help="chained jobs, at a join the edit changes: keep the next scene (a visible cut, the default) "
        "or make it and the ones after it again",
    )
    edit.add_argument("--dry-run", action="store_true", help="only say what each choice would make and cost")
    edit.add_argument("--out", type=Path, metavar="FILE", help="copy the video here (default: under the data dir)")
    edit.set_defaults(command=_edit)

    figures = sub.add_parser(
        "stats", parents=[common], help="latencies, success rates, failures, quota hits and cost over all jobs"
    )
    figures.add_argument(
        "--since",
        type=_since,
        metavar="DATE",
        help="only jobs created at or after: YYYY-MM-DD (its start, UTC) or an ISO 8601 time (UTC unless offset)",
    )
    figures.add_argument("--user", metavar="UID", help="only this user's jobs")
    figures.add_argument(
        "--firestore",
        nargs="?",
        const="",
        metavar="PROJECT",
        help="read the videoJobs of a Firestore project (default: GOOGLE_CLOUD_PROJECT) instead of the data dir, "
        "with Application Default Credentials, or the emulator at FIRESTORE_EMULATOR_HOST",
    )
    figures.set_defaults(command=_stats)

    serve = sub.add_parser("serve", help="serve the web page on 127.0.0.1 against the embedded pipeline")
    serve.add_argument(
        "--data-dir", type=Path, help="where jobs and files live (env LONGFORM_DATA_DIR, default ./.longform)"
    )
    serve.add_argument("--port", type=_port, default=8765, metavar="N", help="port on 127.0.0.1 (default 8765)")
    serve.set_defaults(command=_serve, json=False)
    return parser


def _since(text: str) -> str:
    """A date (its start, UTC) or an ISO 8601 time, written as the jobs' timings are, so that it
    compares with their ``createdAt`` as text."""
    try:
        moment = datetime.fromisoformat(text)  # a date alone is its midnight
        return iso_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError):  # OverflowError: an offset that moves it out of years 1–9999
        raise argparse.ArgumentTypeError(
            f"must be a date (YYYY-MM-DD) or an ISO 8601 time (YYYY-MM-DDTHH:MM:SS, Z or ±HH:MM optional), got {text!r}"
        ) from None


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be 0–65535")
    return port


class _UsageError(Exception):
    """A command line argparse cannot read; ``field`` is the option or argument it names, if any."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        named = re.match(r"argument ([^:]+):", message)
        self.field = named.group(1) if named else None


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are reported like the others (as JSON with --json) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self, message)
