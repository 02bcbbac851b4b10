"""The stream state machine of one channel (spec 13), sans-IO.

Theory of operation. A :class:`StreamTable` holds the streams of the requests this side sent
(``mine``: it consumes their output streams and produces their input streams) and of the requests
its peer sent (``theirs``: it produces output, consumes input). Feeding it what arrives
(``feed``, ``on_response``, ``on_peer_cancel``) and telling it what the application does
(``take``, ``send``, ``close_input``, ``cancel``, ``answer``) updates the state and appends the
messages to send to ``outbox`` (plain JSON-RPC values, in order). A step that must wait (a take
with nothing buffered, a send with no credit) returns :data:`WAIT`; the I/O layer waits for
``on_change`` of that stream and retries. Any failure moves a stream to a failed state that every
later step raises, so nothing is left half-updated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ._stream_messages import (
    CREDIT,
    DEFAULT_WINDOW,
    END,
    ERROR,
    ITEM,
    MAX_OPEN_STREAMS,
    MAX_WINDOW,
    STREAM_CLOSED,
    STREAM_PROTOCOL_ERROR,
    TOO_MANY_STREAMS,
    Credit,
    Dir,
    End,
    Failed,
    Item,
    Malformed,
    Opening,
    StreamId,
    parse_stream_message,
)
from .constants import METHOD_CANCEL
from .errors import IpcError, RemoteError

__all__ = ["WAIT", "Consumer", "EndOfStream", "Producer", "StreamError", "StreamTable", "Wait"]


class StreamError(IpcError):
    """A stream step failed locally: -32010 (protocol error), -32011 (stream closed), -32002
    (cancelled), -32006/-32008 (channel gone). ``code`` and ``data`` as in a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class Wait:
    """The type of :data:`WAIT`."""


WAIT: Final = Wait()
"""A step that cannot go on yet: wait for the stream's ``on_change`` and try again."""


def _note(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


@dataclass(eq=False)
class _Stream:
    stream: StreamId
    dir: Dir
    failure: BaseException | None = None
    on_change: Callable[[], None] | None = None  # set by the I/O layer to wake a waiting step

    def changed(self) -> None:
        # One wake per wait: the woken step looks at the whole state again, so the changes made
        # before it runs need no wake of their own (a read brings a window of items at once).
        wake = self.on_change
        if wake is not None:
            self.on_change = None
            wake()


@dataclass(eq=False)
class Consumer(_Stream):
    """The receiving end: items buffered plus credit granted and unused never exceed ``window``."""

    window: int = DEFAULT_WINDOW
    buffer: deque[Any] = field(default_factory=deque)
    unused: int = 0
    taken: int = 0
    seq: int = 0
    ended: bool = False
    end_error: BaseException | None = None
    final: Any = None


@dataclass(eq=False)
class Producer(_Stream):
    """The sending end: it sends only while ``credit`` is at least 1."""

    credit: int = 0
    seq: int = 0


@dataclass(eq=False)
class _Call:
    streams: dict[str, Consumer | Producer]
    finished: bool = False  # mine: completed locally or answered; theirs: answered
    # Mine: an input item this side could not send (its CodecError or FramingError), raised to
    # the caller once the call has ended, whatever the peer answered.
    send_failure: IpcError | None = None


class StreamTable:
    """Every stream of one channel; ``channel`` (``"control"``/``"data"``) names it in errors."""

    def __init__(self, channel: str, in_window: int = DEFAULT_WINDOW) -> None:
        self.channel = channel
        self.in_window = in_window
        self.in_windows: dict[str, int] = {}
        """Input windows by method, for handlers registered with ``input_window`` (13.3)."""
        self.outbox: list[dict[str, Any]] = []
        self._mine: dict[StreamId, _Call] = {}
        self._theirs: dict[StreamId, _Call] = {}
        self._peer_open = 0  # streams opened by the peer and not yet ended (13.8)
        self.on_protocol_error: Callable[[StreamId, bool, StreamError], None] | None = None
        """Called with the request id, whether the request is ours, and the -32010 error, when a
        stream fails (13.5): the I/O layer fails our request, or cancels the peer's handler."""

    # -- opening -----------------------------------------------------------------------------

    def open(self, msg_id: StreamId, out_window: int | None, has_input: bool) -> _Call:
        """Register a request of ours that opens streams (the caller sends it)."""
        streams: dict[str, Consumer | Producer] = {}
        if out_window is not None:
            streams["out"] = Consumer(msg_id, "out", window=out_window, unused=out_window)
        if has_input:
            streams["in"] = Producer(msg_id, "in")
        call = self._mine[msg_id] = _Call(streams)
        return call

    def accept(self, msg_id: StreamId, opening: Opening, in_window: int | None = None) -> _Call:
        """Register a request of the peer; raises -32009 over the limit (nothing opens)."""
        n = (opening.out_window is not None) + opening.has_input
        if self._peer_open + n > MAX_OPEN_STREAMS:
            raise RemoteError(
                TOO_MANY_STREAMS,
                f"too many open streams on {self.channel}: {self._peer_open} open, "
                f"limit {MAX_OPEN_STREAMS}",
                {"limit": MAX_OPEN_STREAMS},
            )
        self._peer_open += n
        streams: dict[str, Consumer | Producer] = {}
        if opening.has_input:
            window = in_window or self.in_window
            streams["in"] = Consumer(msg_id, "in", window=window, unused=window)
            self.outbox.append(_note(CREDIT, {"stream": msg_id, "dir": "in", "add": window}))
        if opening.out_window is not None:
            streams["out"] = Producer(msg_id, "out", credit=opening.out_window)
        call = self._theirs[msg_id] = _Call(streams)
        return call

    # -- what arrives --------------------------------------------------------------------------

    def feed(self, method: str, params: Any) -> None:
        """A ``$/stream/*`` notification from the peer."""
        if method == ITEM and self.feed_item(params):
            return
        msg = parse_stream_message(method, params)
        if msg is None:
            return
        # An item "out" or credit "in" is for a request of ours; the rest for one of the peer's.
        # End and error exist for "in" only (for a request of the peer); one with "out" names an
        # output stream we consume, which it fails (13.5).
        if method in (END, ERROR):
            mine = msg.dir == "out"
        else:
            mine = (method == ITEM) == (msg.dir == "out")
        call = (self._mine if mine else self._theirs).get(msg.stream)
        if call is None or call.finished or msg.dir not in call.streams:
            return
        st = call.streams[msg.dir]
        if st.failure is not None:
            return
        if isinstance(msg, Malformed):
            wrong_dir = method in (END, ERROR) and msg.dir == "out"
            reason = msg.reason if wrong_dir else f"malformed {method}: {msg.reason}"
            self._protocol_error(call, st, mine, reason)
        elif isinstance(msg, Item) and isinstance(st, Consumer):
            self._item(call, st, mine, msg)
        elif isinstance(msg, Credit) and isinstance(st, Producer):
            st.credit += msg.add
            if st.credit > MAX_WINDOW:
                reason = f"credit {st.credit} exceeds the maximum window of {MAX_WINDOW}"
                self._protocol_error(call, st, mine, reason)
            else:
                st.changed()
        elif isinstance(msg, End | Failed) and isinstance(st, Consumer) and not st.ended:
            st.ended = True
            if isinstance(msg, Failed):
                st.end_error = RemoteError(msg.code, msg.message, msg.data)
            st.changed()

    def feed_item(self, params: Any) -> bool:
        """The params of a ``$/stream/item`` that is the next item of an output stream of ours,
        within its window: taken (True). Anything else is left to :meth:`feed`, untouched
        (False). The reader's short way for the commonest stream message: no message object."""
        if type(params) is not dict or params.get("dir") != "out":
            return False
        sid = params.get("stream")
        if type(sid) is not int and type(sid) is not str:
            return False  # not an id (or unhashable): feed says why
        call = self._mine.get(sid)
        if call is None or call.finished:
            return False
        st = call.streams.get("out")
        seq = params.get("seq")
        if (
            type(st) is not Consumer
            or st.failure is not None
            or st.ended
            or st.unused == 0
            or type(seq) is not int
            or seq != st.seq
            or "value" not in params
        ):
            return False
        st.unused -= 1
        st.seq = seq + 1
        st.buffer.append(params["value"])
        st.changed()
        return True

    def _item(self, call: _Call, st: Consumer, mine: bool, msg: Item) -> None:
        if st.ended:
            return
        if st.unused == 0:
            reason = f"item seq {msg.seq} exceeds the window of {st.window}"
            self._protocol_error(call, st, mine, reason)
        elif msg.seq != st.seq:
            reason = f"item seq {msg.seq} is not the next one ({st.seq})"
            self._protocol_error(call, st, mine, reason)
        else:
            st.unused -= 1
            st.seq += 1
            st.buffer.append(msg.value)
            st.changed()

    def _protocol_error(self, call: _Call, st: _Stream, mine: bool, reason: str) -> None:
        text = f"stream {st.stream} ({st.dir}) on {self.channel}: {reason}"
        data = {"stream": st.stream, "dir": st.dir}
        if mine:
            self.outbox.append(_note(METHOD_CANCEL, {"id": st.stream}))
        else:
            body = {"code": STREAM_PROTOCOL_ERROR, "message": text, "data": data}
            self.outbox.append({"jsonrpc": "2.0", "id": st.stream, "error": body})
            self._peer_open -= len(call.streams)
        call.finished = True
        error = StreamError(STREAM_PROTOCOL_ERROR, text, data)
        self._fail(call, error)
        if self.on_protocol_error is not None:
            self.on_protocol_error(st.stream, mine, error)

    def _fail(self, call: _Call, error: BaseException) -> None:
        for st in call.streams.values():
            if st.failure is None:
                st.failure = error
                if isinstance(st, Consumer):
                    st.buffer.clear()
                st.changed()

    def on_response(self, msg_id: StreamId, result: Any, error: BaseException | None) -> bool:
        """The response to a request of ours; False when it is to be dropped (13.5, 13.6)."""
        call = self._mine.pop(msg_id, None)
        if call is None:
            return True
        if call.finished:
            return False
        call.finished = True
        out, inp = call.streams.get("out"), call.streams.get("in")
        if isinstance(out, Consumer):
            out.ended, out.final, out.end_error = True, result, error
            out.changed()
        if isinstance(inp, Producer) and inp.failure is None:
            inp.failure = StreamError(STREAM_CLOSED, f"stream {msg_id} (in): the request ended")
            inp.changed()
        return True

    def on_peer_cancel(self, msg_id: StreamId) -> None:
        """``$/cancelRequest`` for a request of the peer: its streams' steps raise -32002."""
        call = self._theirs.get(msg_id)
        if call is not None and not call.finished:
            self._fail(call, StreamError(-32002, f"request {msg_id} was cancelled"))

    def close(self, error: BaseException) -> None:
        """The channel closed: every open stream fails with ``error`` (13.7)."""
        for table in (self._mine, self._theirs):
            for call in table.values():
                call.finished = True
                self._fail(call, error)
            table.clear()
        self._peer_open = 0

    # -- what the application does --------------------------------------------------------------

    def take(self, st: Consumer) -> Any:
        """The next item, or :data:`WAIT`; at the end raises :class:`EndOfStream` with the final
        value, or the stream's error."""
        if st.failure is not None:
            raise st.failure
        if st.buffer:
            value = st.buffer.popleft()
            st.taken += 1
            if st.taken >= (st.window + 1) // 2 and not st.ended:  # half the window, rounded up
                params = {"stream": st.stream, "dir": st.dir, "add": st.taken}
                self.outbox.append(_note(CREDIT, params))
                st.unused += st.taken
                st.taken = 0
            return value
        if not st.ended:
            return WAIT
        if st.end_error is not None:
            raise st.end_error
        raise EndOfStream(st.final)

    def send(self, st: Producer, value: Any) -> Wait | None:
        """Send one item, or return :data:`WAIT` with no credit; raises a failed stream's error."""
        if st.failure is not None:
            raise st.failure
        if st.credit == 0:
            return WAIT
        st.credit -= 1
        params = {"stream": st.stream, "dir": st.dir, "seq": st.seq, "value": value}
        self.outbox.append(_note(ITEM, params))
        st.seq += 1
        return None

    def unsend(self, st: Producer) -> None:
        """The item just sent could not be encoded: it never left, so give back its seq and credit
        (the caller removed it from ``outbox``; the stream stays open, 13)."""
        st.credit += 1
        st.seq -= 1

    def end_input(self, st: Producer, error: RemoteError | None = None) -> None:
        """The requester ends its input stream: ``$/stream/end``, or ``$/stream/error``."""
        if st.failure is not None:
            return
        if error is None:
            self.outbox.append(_note(END, {"stream": st.stream, "dir": "in"}))
        else:
            body: dict[str, Any] = {"code": error.code, "message": error.message}
            if error.data is not None:
                body["data"] = error.data
            self.outbox.append(_note(ERROR, {"stream": st.stream, "dir": "in", "error": body}))
        st.failure = StreamError(STREAM_CLOSED, f"stream {st.stream} (in) was already ended")

    def cancel(self, msg_id: StreamId) -> None:
        """The requester gives up on a request of ours (13.6): send ``$/cancelRequest``."""
        call = self._mine.get(msg_id)
        if call is None or call.finished:
            return
        call.finished = True
        self.outbox.append(_note(METHOD_CANCEL, {"id": msg_id}))
        self._fail(call, StreamError(-32002, f"request {msg_id} was cancelled"))

    def forget(self, msg_id: StreamId) -> None:
        """A request of ours is done with (its caller completed it): drop its record."""
        self._mine.pop(msg_id, None)

    def answer(self, msg_id: StreamId) -> bool:
        """The handler of a peer's request finished; False if it was already answered (-32010)."""
        call = self._theirs.pop(msg_id, None)
        if call is None:
            return True
        if call.finished:
            return False
        call.finished = True
        self._peer_open -= len(call.streams)
        self._fail(call, StreamError(STREAM_CLOSED, f"stream {msg_id}: the request was answered"))
        return True


class EndOfStream(Exception):
    """Raised by :meth:`StreamTable.take` at a normal end; ``value`` is the final value."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value
