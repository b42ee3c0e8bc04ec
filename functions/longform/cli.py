"""``longform``: generate, watch, list and resume jobs on the embedded pipeline, or serve the web page.

Exit codes: 0 the job completed; 1 it failed or was cancelled (the reason is printed);
2 invalid input (the message names the field; no job, no files).
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import bootstrap
from .config import Settings
from .errors import InvalidRequest, InvalidSetting, JobNotFound
from .job import Job, Status

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
REFRESH_SECONDS = 0.1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=args.json, highlight=False)
    _setup_logging(console)
    try:
        return int(args.command(args, console))
    except (InvalidRequest, InvalidSetting) as exc:
        console.print(f"[red]invalid input[/red] — {exc}", markup=True)
        return EXIT_INVALID
    except JobNotFound as exc:
        console.print(f"[red]{exc}[/red]")
        return EXIT_INVALID


# -- commands -------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace, console: Console) -> int:
    # Everything is checked before anything is written: a bad request leaves no job and no files.
    fields = _request_fields(args)
    settings = _settings(args)
    if args.concurrency is not None:
        try:
            settings = settings.with_(concurrency=args.concurrency)
        except InvalidSetting as exc:
            raise InvalidRequest("--concurrency", exc.rule) from None
    return _run_and_report(settings, fields, None, args, console)


def _resume(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args)
    if not settings.db_path.exists():
        raise JobNotFound(args.job_id)
    return _run_and_report(settings, None, args.job_id, args, console)


def _status(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args)
    if not settings.db_path.exists():
        raise JobNotFound(args.job_id)
    job = bootstrap.local(settings).service.find(bootstrap.LOCAL_USER, args.job_id)
    if args.json:
        print(json.dumps(job.to_json()))
        return EXIT_OK
    console.print(f"job {job.job_id}  {job.status}  {job.progress}%  {job.status_message()}")
    table = Table("scene", "status", "attempts", "prompt", "uri")
    for seg in job.segments:
        table.add_row(str(seg.index + 1), seg.status, str(seg.attempts), seg.prompt, seg.uri or "")
    console.print(table)
    if job.video_uri:
        console.print(f"video: {job.video_uri}")
    return EXIT_OK


def _list(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args)
    jobs = bootstrap.local(settings).service.recent(bootstrap.LOCAL_USER, 50) if settings.db_path.exists() else []
    if args.json:
        print(json.dumps([job.to_json() for job in jobs]))
        return EXIT_OK
    if not jobs:
        console.print("no jobs")
        return EXIT_OK
    table = Table("job", "status", "progress", "scenes", "created", "first prompt")
    for job in jobs:
        table.add_row(
            job.job_id,
            job.status,
            f"{job.progress}%",
            str(len(job.segments)),
            job.timings["createdAt"],
            job.segments[0].prompt[:40],
        )
    console.print(table)
    return EXIT_OK


def _serve(args: argparse.Namespace, console: Console) -> int:
    from . import local_server  # Flask and the server only for this command

    settings = _settings(args)

    def ready(url: str) -> None:
        console.print(f"Longform on {url} (jobs in {settings.data_dir}; Ctrl-C stops)", soft_wrap=True)

    try:
        local_server.serve(settings, port=args.port, on_ready=ready)
    except OSError as exc:  # cannot bind (werkzeug itself reports a port in use, and exits 1)
        console.print(f"[red]cannot listen on 127.0.0.1:{args.port}[/red]: {exc.strerror or exc}")
        return EXIT_FAILED
    return EXIT_OK


# -- running with progress ---------------------------------------------------------------------------


def _run_and_report(
    settings: Settings, fields: dict[str, Any] | None, job_id: str | None, args: argparse.Namespace, console: Console
) -> int:
    """Start a new job (from the request ``fields``) or resume ``job_id``, in a worker thread,
    and show every change to it as it happens."""
    updates: queue.Queue[Job] = queue.Queue()
    local = bootstrap.local(settings, on_update=updates.put)
    started = time.monotonic()
    if job_id is None:
        ref = local.service.trigger(bootstrap.LOCAL_USER, fields)
        job = local.service.job(bootstrap.LOCAL_USER, ref["jobId"])
        console.print(f"job {job.job_id}: {len(job.segments)} scene(s) × {job.video_request.segment_seconds}s")
    else:
        job = local.service.find(bootstrap.LOCAL_USER, job_id)
        console.print(f"resuming job {job.job_id} ({job.status}, {job.progress}%)")
        local.service.resume(bootstrap.LOCAL_USER, job.job_id)
    worker = local.engine.threads.get(job.job_id) or threading.Thread(target=lambda: None)
    try:
        _watch(job, updates, worker, console)
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; continue with: longform resume {job.job_id}")
        return 130
    job = local.pipeline.jobs.get(job.job_id)
    output: Path | None = None
    if job.status is Status.COMPLETED:
        output = _deliver(local, job.job_id, args.out)
        console.print(f"[green]done[/green] in {time.monotonic() - started:.1f}s: {output}")
    else:
        step = f" (step {job.error_step})" if job.error_step else ""
        console.print(f"[red]job {job.status}[/red]{step}: {job.error or job.status_message()}")
    if args.json:
        print(json.dumps(_summary(job, output)))
    return EXIT_OK if job.status is Status.COMPLETED else EXIT_FAILED


def _watch(job: Job, updates: queue.Queue[Job], worker: threading.Thread, console: Console) -> None:
    """Show each state the job passes through: a bar on a terminal, plain lines otherwise."""

    def changes() -> Iterator[Job]:
        yield job
        while worker.is_alive() or not updates.empty():
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
        line = f"[{seen.progress:3d}%] {seen.status_message()}"
        if line != last:
            console.print(line)
            last = line


def _deliver(local: bootstrap.Local, job_id: str, out: Path | None) -> Path:
    from .ports import final_key

    with local.pipeline.blobs.local_path(final_key(job_id)) as path:
        if out is None:
            return path
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        return out.resolve()


def _summary(job: Job, output: Path | None) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "status": job.status.value,
        "output": str(output) if output else None,
        "durationSeconds": _duration(output) if output else None,
        "segments": [seg.model_dump(mode="json") for seg in job.segments],
        "timings": job.timings,
        "error": job.error,
    }


def _duration(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return round((container.duration or 0) / 1_000_000, 3)


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


def _setup_logging(console: Console) -> None:
    handler: logging.Handler
    if console.is_terminal:
        handler = RichHandler(console=console, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, help="where jobs and files live (env LONGFORM_DATA_DIR, default ./.longform)"
    )
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout; human output on stderr")

    parser = argparse.ArgumentParser(prog="longform", description="Turn a list of scene prompts into one long video.")
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

    serve = sub.add_parser("serve", help="serve the web page on 127.0.0.1 against the embedded pipeline")
    serve.add_argument(
        "--data-dir", type=Path, help="where jobs and files live (env LONGFORM_DATA_DIR, default ./.longform)"
    )
    serve.add_argument("--port", type=_port, default=8765, metavar="N", help="port on 127.0.0.1 (default 8765)")
    serve.set_defaults(command=_serve, json=False)
    return parser


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be 0–65535")
    return port
