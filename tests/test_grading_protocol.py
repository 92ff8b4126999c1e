"""The grader's reading layer (protocol.Channel) against a child that sends what it likes (issue 19).

The child here is a real process writing raw bytes into the pipe the grader reads: no sandbox is needed to
check that the reader is bounded and incremental (a 60 MB line without a newline, a frame dribbled out in
small pieces, a frame that never ends) and that a number the JSON text spells as non-finite is refused in
every spelling, whatever it is nested in.
"""

import functools
import struct
import subprocess
import sys
import time

import pytest

from minae.homework.protocol import MAX_HEADER, MAX_RAW, Channel, ProtocolError

_WRITER = """
import os, sys, time
data = open(sys.argv[1], "rb").read()
step = int(sys.argv[2])
for i in range(0, len(data), step):
    os.write(1, data[i : i + step])
time.sleep(60)
"""


def _channel(tmp_path, data: bytes, step: int = 1 << 20, seconds: float = 20):
    path = tmp_path / "frame.bin"
    path.write_bytes(data)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(step)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    channel = Channel(proc, proc.kill)
    channel.deadline = time.monotonic() + seconds
    return channel, proc


def _frame(header: bytes, raw: bytes = b"") -> bytes:
    return struct.pack("<II", len(header), len(raw)) + header + raw


def _refused(channel, proc, match):
    try:
        with pytest.raises(ProtocolError, match=match):
            channel.answer()
        proc.wait(timeout=5)  # the grader killed the child
    finally:
        proc.kill()
        proc.wait()


def test_a_60_mb_line_is_refused_before_it_is_read(tmp_path, peak_bytes):
    # the old reader appended each chunk to a buffer and split it on newlines: a 60 MB line without one
    # was re-copied at every chunk (still reading after 11 minutes). A frame states its length first: one
    # past the caps is refused before a byte of it is buffered
    for head, raw in ((60_000_000, 0), (MAX_HEADER + 1, 0), (0, MAX_RAW + 1), (2**32 - 1, 2**32 - 1)):
        channel, proc = _channel(tmp_path, struct.pack("<II", head, raw) + b"x" * 60_000_000)
        started = time.monotonic()
        refuse = functools.partial(_refused, channel, proc, "the child sent more than .* in its answers to one test")
        peak = peak_bytes(refuse)
        assert time.monotonic() - started < 5
        assert peak < 2**20, f"the grader buffered {peak >> 20} MB of a refused frame"


def test_a_frame_dribbled_in_small_pieces_is_read_in_linear_time_and_memory(tmp_path, peak_bytes):
    # 16 MB of array bytes written 4 KB at a time (4096 writes): a reader that re-buffers what it has at
    # every piece copies 32 GB; one sized once from the frame's length copies the 16 MB once
    n = 2 * 2**20
    data = _frame(b'{"ok": {"__nd__": ["<f8", [%d]]}}' % n, struct.pack("<d", 1.5) * n)
    channel, proc = _channel(tmp_path, data, step=4096)
    got = []
    started = time.monotonic()
    try:
        peak = peak_bytes(lambda: got.append(channel.answer()))
    finally:
        proc.kill()
        proc.wait()
    assert time.monotonic() - started < 10
    assert got[0].shape == (n,) and float(got[0].sum()) == 1.5 * n
    assert peak < 3 * 16 * 2**20 + 2**20, f"reading a 16 MB frame took {peak >> 20} MB"


def test_a_frame_that_never_ends_stops_at_the_deadline(tmp_path):
    # the frame promises 1000 bytes and sends 10: the grader waits until its own deadline, no longer
    channel, proc = _channel(tmp_path, struct.pack("<II", 1000, 0) + b"{" * 10, seconds=1)
    started = time.monotonic()
    _refused(channel, proc, "ran longer than")
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN", "1e999", "-1e400", "1E+999"])
@pytest.mark.parametrize(
    "where",
    ['{"ok": %s}', '{"ok": {"__list__": [1.0, %s]}}', '{"ok": {"__dict__": [["a", {"__tuple__": [%s]}]]}}',
     '{"ok": {"__nd__": ["<f8", [%s]]}}', '{"raised": {"type": "E", "message": "m", "frames": [], "x": %s}}'],
)  # fmt: skip
def test_a_non_finite_number_is_refused_in_every_spelling(tmp_path, token, where):
    # Infinity in a value crashed the old parent (json.loads takes Infinity and NaN; 1e999 overflows to inf
    # without either word): any number the text spells as non-finite is a malformed message, and the child
    # is killed. A non-finite value of the student's goes in the protocol's own form ({"__float__": "inf"})
    channel, proc = _channel(tmp_path, _frame((where % token).encode()))
    _refused(channel, proc, "malformed message")


def test_finite_and_tagged_values_are_read(tmp_path):
    # the controls: large finite numbers are numbers, and a student's inf in the protocol's form is data
    text = b'{"ok": {"__list__": [1e300, -2.5e-300, {"__float__": "inf"}, {"__float__": "nan"}]}}'
    channel, proc = _channel(tmp_path, _frame(text))
    try:
        value = channel.answer()
    finally:
        proc.kill()
        proc.wait()
    assert value[:3] == [1e300, -2.5e-300, float("inf")] and value[3] != value[3]
