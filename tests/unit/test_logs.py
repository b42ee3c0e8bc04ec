import io
import json
import logging

from longform.logs import JsonFormatter, fields, log_context


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test-{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_json_with_severity_message_and_the_job_context() -> None:
    logger, stream = capture()
    with log_context(jobId="j1", userId="u1"):
        logger.info("queued %d scenes", 3)
        with log_context(step="segment-0-start", attempt=2):
            logger.warning("retrying")
    logger.error("outside")

    first, second, third = lines(stream)
    assert first["severity"] == "INFO" and first["message"] == "queued 3 scenes"
    assert (first["jobId"], first["userId"]) == ("j1", "u1") and "step" not in first
    assert second["severity"] == "WARNING"
    assert (second["jobId"], second["step"], second["attempt"]) == ("j1", "segment-0-start", 2)
    assert third == {"severity": "ERROR", "message": "outside", "logger": logger.name}


def test_extra_fields_and_stack_traces_are_kept() -> None:
    logger, stream = capture()
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra=fields(segment=2))
    (line,) = lines(stream)
    assert line["segment"] == 2 and "ValueError: boom" in str(line["stack_trace"])
