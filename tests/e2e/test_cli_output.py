"""What `longform` writes where, when its output is piped: the result on stdout, every error and
diagnostic on stderr, one JSON object on stdout with --json, and no line wrapped or cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import longform

LONG_DIR = "a-data-dir-with-a-rather-long-name-" * 4  # 140 characters: far past 80 columns


# -- errors: stderr, and one JSON object with --json --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "status", "field", "message"),
    [
        (["generate", "a scene", "--segment-seconds", "5"], {}, "INVALID_ARGUMENT", "segmentSeconds",
         "segmentSeconds: must be one of 4, 6 or 8"),
        (["generate", "a scene", "   "], {}, "INVALID_ARGUMENT", "prompts[1]", "prompts[1]: "),
        (["generate"], {}, "INVALID_ARGUMENT", "prompts", "prompts: must have at least 1 prompt"),
        (["generate", "a scene", "--concurrency", "0"], {}, "INVALID_ARGUMENT", "--concurrency", "--concurrency: "),
        (["generate", "--prompts-file", "missing.txt"], {}, "INVALID_ARGUMENT", "--prompts-file",
         "--prompts-file: cannot be read"),
        (["generate", "a scene", "--seed", "many"], {}, "INVALID_ARGUMENT", "--seed",
         "argument --seed: invalid int value: 'many'"),
        (["list"], {"LONGFORM_CONCURRENCY": "0"}, "INVALID_ARGUMENT", "LONGFORM_CONCURRENCY",
         "LONGFORM_CONCURRENCY: must be at least 1"),
        (["status", "nope"], {}, "NOT_FOUND", None, "no job nope"),
        (["resume", "nope"], {}, "NOT_FOUND", None, "no job nope"),
    ],
)  # fmt: skip
def test_an_error_is_on_stderr_or_with_json_one_error_object_on_stdout(
    tmp_path: Path, args: list[str], env: dict[str, str], status: str, field: str | None, message: str
) -> None:
    human = longform(*args, "--data-dir", "data", cwd=tmp_path, env=env)
    assert human.returncode == 2
    assert human.stdout == ""  # `2>/dev/null` hides it all; a script reading stdout sees nothing
    assert message in human.stderr

    result = longform(*args, "--data-dir", "data", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 2
    body = json.loads(result.stdout)  # exactly one JSON document
    assert set(body) == {"error"} and set(body["error"]) == {"status", "message", "field"}
    assert body["error"]["status"] == status
    assert body["error"]["field"] == field
    assert message in body["error"]["message"]
    assert message in result.stderr  # still told to a person
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["human", "json"])
def test_a_failed_job_gives_its_reason_and_the_log_on_stderr(tmp_path: Path, json_flag: list[str]) -> None:
    data = tmp_path / LONG_DIR
    data.mkdir()
    (data / "blobs").write_text("")  # a file where the segments' folder must go: the first scene fails
    result = longform(
        "generate", "A scene", "--segment-seconds", "4", "--data-dir", str(data), *json_flag, cwd=tmp_path
    )

    assert result.returncode == 1, result.stderr
    blocked = f"Not a directory: '{data.resolve()}/blobs/jobs/"
    reason = [line for line in result.stderr.splitlines() if line.startswith("job failed (step segment-0-start): ")]
    assert len(reason) == 1 and blocked in reason[0]  # the whole reason, long path included, on one line
    assert any(
        line.startswith("ERROR ") and "failed at step segment-0-start" in line for line in result.stderr.splitlines()
    )
    if json_flag:  # the job ran: its summary, with the reason in "error", is the one document on stdout
        summary = json.loads(result.stdout)
        assert summary["status"] == "failed" and blocked in summary["error"] and summary["output"] is None
    else:  # progress and what the job spent: neither the reason nor the log
        assert blocked not in result.stdout and "failed" not in result.stdout
        *progress, spent = result.stdout.splitlines()
        assert progress[-1].startswith("[  0%] Imaginating Scene")
        assert spent.startswith("cost: would be $0.00 (scenes $0.00, stitch $0.00) in the cloud")


# -- no hard wrapping when piped ------------------------------------------------------------------------


@pytest.mark.slow
def test_piped_output_keeps_long_paths_prompts_and_messages_on_one_line(tmp_path: Path) -> None:
    data = (tmp_path / LONG_DIR).resolve()
    prompt = "A lighthouse keeper climbs the spiral stairs at dusk, " * 4  # 220 characters
    result = longform("generate", prompt, "--segment-seconds", "4", "--data-dir", str(data), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    job_id = result.stdout.split()[1].rstrip(":")
    video = data / f"blobs/jobs/{job_id}/final/video.mp4"
    done = [line for line in result.stdout.splitlines() if line.startswith("done in ")]
    assert len(done) == 1 and done[0].endswith(f"s: {video}")

    status = longform("status", job_id, "--data-dir", str(data), cwd=tmp_path)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert f"video: {video.as_uri()}" in lines
    assert any(prompt.strip() in line and (data / f"blobs/jobs/{job_id}").as_uri() in line for line in lines)

    ref = "0123456789abcdef" * 8  # a job id may be 128 characters long
    unknown = longform("status", ref, "--data-dir", str(data), cwd=tmp_path)
    assert unknown.returncode == 2
    assert f"no job {ref}" in unknown.stderr.splitlines()

    missing = tmp_path / LONG_DIR / "scenes-that-are-not-there.txt"
    unread = longform("generate", "--prompts-file", str(missing), "--data-dir", str(data), cwd=tmp_path)
    assert unread.returncode == 2
    assert any(line.startswith("invalid input — --prompts-file: cannot be read") and str(missing) in line
               for line in unread.stderr.splitlines())  # fmt: skip
