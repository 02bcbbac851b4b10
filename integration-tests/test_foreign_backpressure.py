"""A client that stops reading its answers (spec 2.6, 4.5): nothing is dropped or reordered, and a
worker that bounds what it runs stops reading instead of holding every answer in memory."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from foreign_parent import ForeignWorker, fixtures, frame, request

hygiene = fixtures.hygiene
shared = fixtures.shared
fresh = fixtures.fresh

REQUESTS = 600
PAYLOAD = "x" * (
    64 * 1024
)  # each answer is as large: 38 MiB in all, far beyond kernel buffers
# The SDKs that bound what they hold (Python: the write queue, then max_concurrent_handlers
# slots; Node: 256 answers, or 64 MiB of them, waiting to be written) stop reading; Go runs every
# request (4.5: MAY bound).
BOUNDED = {"python", "node"}


def test_a_client_that_stops_reading_gets_every_answer_once_it_reads(
    fresh: ForeignWorker,
) -> None:
    connection = fresh.open_data()
    frames = b"".join(
        frame(request("echo", [PAYLOAD, n], 1000 + n)) for n in range(REQUESTS)
    )
    sock = connection.sock
    sock.setblocking(False)
    sent, stalled_since = 0, None
    while sent < len(
        frames
    ):  # write without reading, until the worker stops taking them
        try:
            sent += sock.send(frames[sent : sent + 65536])
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 2.0:
                break
            time.sleep(0.01)
    if fresh.language in BOUNDED:
        assert sent < len(frames), (
            f"the {fresh.language} worker took all {len(frames)} bytes while nothing was read"
        )

    answers: dict[int, Any] = {}
    seen = 0
    deadline = time.monotonic() + 60
    while len(answers) < REQUESTS:  # now read, and send the rest as the worker takes it
        assert time.monotonic() < deadline, (
            f"{len(answers)} of {REQUESTS} answers arrived"
        )
        if sent < len(frames):
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(frames[sent : sent + 65536])
        received = connection.drain_now()  # everything read so far, in order
        for item in received[seen:]:
            message = item.message
            assert isinstance(message, dict) and "result" in message, item
            assert message["id"] not in answers, f"answered twice: {message['id']}"
            answers[message["id"]] = message["result"]
        seen = len(received)
        time.sleep(0.001)
    assert answers == {1000 + n: [PAYLOAD, n] for n in range(REQUESTS)}
