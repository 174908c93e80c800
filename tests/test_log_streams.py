"""Job logs as CloudWatch streams, without a server: task ids, line splitting, filter patterns."""

from __future__ import annotations

import re
import uuid

import pytest

from genobatch.api import log_streams
from genobatch.api.log_streams import Stream
from genobatch.api.logs import FilterPattern, InvalidParameterException

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it


def test_task_ids_are_32_hex_digits_and_decode_to_job_and_attempt():
    job_id = str(uuid.uuid4())
    seen = set()
    for attempt in range(1, 11):
        task = log_streams.task_id(job_id, attempt)
        assert re.fullmatch(r"[0-9a-f]{32}", task)
        assert log_streams._decode(task) == (job_id, None, -1, attempt)
        seen.add(task)
    assert len(seen) == 10


def test_array_child_task_ids_keep_the_index_and_a_pattern_of_the_parent():
    parent = str(uuid.uuid4())
    tasks = {log_streams.task_id(f"{parent}:{index}", 2) for index in (0, 1, 9999)}
    assert len(tasks) == 3
    task = log_streams.task_id(f"{parent}:9999", 2)
    assert re.fullmatch(r"[0-9a-f]{32}", task)
    job_id, pattern, index, attempt = log_streams._decode(task)
    assert job_id is None and index == 9999 and attempt == 2
    # The LIKE pattern matches the parent: every kept digit equal, the four dropped ones wildcards.
    assert len(pattern) == len(parent)
    assert all(p in ("_", c) for p, c in zip(pattern, parent, strict=True))
    assert pattern.count("_") == 4
    # A plain job's task id can never be read as an array child's, nor the reverse.
    assert log_streams._decode(log_streams.task_id(parent, 2))[0] == parent


def test_ids_genobatch_did_not_make_have_no_task_id():
    assert log_streams.task_id("not-a-uuid", 1) is None
    assert log_streams.task_id(str(uuid.uuid1()), 1) is None  # not a UUID4
    assert log_streams.task_id(str(uuid.uuid4()).upper(), 1) is None


def _stream(tmp_path, content: bytes, *, ended: bool) -> Stream:
    (tmp_path / "output.log").write_bytes(content)
    return Stream("/aws/batch/job", "d/default/x", "j", 1, 0, 5, ended, str(tmp_path))


def test_a_running_attempts_unfinished_line_is_held_back(tmp_path):
    stream = _stream(tmp_path, b"one\n\ntwo\nthr", ended=False)
    lines, after = log_streams.read_forward(stream, 0, 100, 1 << 20)
    assert [line.text for line in lines] == ["one", "two"]  # the empty line is not an event
    assert after == len(b"one\n\ntwo\n")
    assert log_streams.complete_end(stream) == after
    ended = _stream(tmp_path, b"one\n\ntwo\nthree", ended=True)
    assert [line.text for line in log_streams.read_forward(ended, after, 100, 1 << 20)[0]] == ["three"]


def test_reading_backward_returns_the_last_events_oldest_first(tmp_path):
    body = b"".join(b"line %d\n" % i for i in range(1, 2001))
    stream = _stream(tmp_path, body, ended=True)
    lines, begin = log_streams.read_backward(stream, len(body), 3, 1 << 20)
    assert [line.text for line in lines] == ["line 1998", "line 1999", "line 2000"]
    assert begin == lines[0].start
    lines, begin = log_streams.read_backward(stream, begin, 5000, 1 << 20)
    assert len(lines) == 1997 and lines[0].text == "line 1" and begin == 0


def test_lines_over_the_event_size_limit_are_split(tmp_path):
    size = log_streams.MAX_EVENT_BYTES
    stream = _stream(tmp_path, b"a" * (size + 10) + b"\n", ended=True)
    lines, _ = log_streams.read_forward(stream, 0, 100, 1 << 30)
    assert [len(line.text) for line in lines] == [size, 10]


@pytest.mark.parametrize(
    ("pattern", "matching"),
    [
        ("", ["ERROR disk full", "WARN slow disk", "INFO ok", "error lower"]),
        ("ERROR", ["ERROR disk full"]),
        ("disk ERROR", ["ERROR disk full"]),
        ("?ERROR ?WARN", ["ERROR disk full", "WARN slow disk"]),
        ("-ERROR", ["WARN slow disk", "INFO ok", "error lower"]),
        ("disk -WARN", ["ERROR disk full"]),
        ('"disk full"', ["ERROR disk full"]),
        ('"full disk"', []),
        ('?"slow disk" ?ok', ["WARN slow disk", "INFO ok"]),
    ],
)
def test_filter_patterns_for_unstructured_events(pattern, matching):
    events = ["ERROR disk full", "WARN slow disk", "INFO ok", "error lower"]
    parsed = FilterPattern.parse(pattern)
    assert [e for e in events if parsed.matches(e)] == matching


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ('{ $.level = "ERROR" }', "JSON"),
        ("[ip, user, ...]", "space-delimited"),
        ("%ERR[O]R%", "regular-expression"),
        ('"unterminated', "unterminated"),
        ("ok ?", "empty"),
    ],
)
def test_unsupported_or_malformed_filter_patterns_are_refused_by_name(pattern, words):
    with pytest.raises(InvalidParameterException) as raised:
        FilterPattern.parse(pattern)
    assert "filterPattern" in raised.value.message and words in raised.value.message
