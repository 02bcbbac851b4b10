"""Direct requests: a blocking caller's thread writes its request itself, and sleeps until the
loop's reader hands it the answer.

A call through the loop thread costs two wake-ups of a sleeping thread (the loop, to start the
request; the caller, with the result) and two trips through the event loop; on a small request
that is most of its cost. Here the caller frames the request and writes it to the worker's
channel itself, when nothing is queued before it (:meth:`Channel.request_from_thread`), and the
channel completes it from the reader as it completes any request: one wake-up, of the caller.

Anything else goes through the loop as before: a worker not running, a traced or busy channel,
a pool with ``max_requests_per_worker``, retries after a crash, and every failure's mapping to
the async API's errors (:meth:`ProcessHandle._failed_call`), so both paths raise the same.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from typing import TYPE_CHECKING, Any

from .._calls import annotated, check_timeout
from .._handle_streams import translate_call_error
from .._pool_streams import pool_call
from ..channel import check_request_method, check_user_method
from ..channel._pending import Pending
from ..errors import IpcError, RemoteError, WorkerCrashed, WorkerUnavailable, fresh

if TYPE_CHECKING:
    from ..handle import ProcessHandle
    from ..pool import WorkerPool
    from ._caller import Caller

__all__ = ["NOT_SENT", "direct_handle_call", "direct_notify", "direct_pool_call"]

NOT_SENT: Any = object()
"""Returned when the request was not sent directly: send it through the loop."""


class Answer:
    """Set once a direct request is answered or has failed; the caller sleeps on it."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        """Wake the caller (called by the channel, on the loop thread; once is enough)."""
        if not self._set:
            self._set = True
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        """Sleep until set, at most ``timeout`` seconds (``math.inf``: no limit)."""
        if math.isinf(timeout):
            return self._lock.acquire()
        return self._lock.acquire(timeout=min(timeout, threading.TIMEOUT_MAX))


def direct_handle_call(
    caller: Caller,
    handle: ProcessHandle,
    via: str,
    method: str,
    params: Any,
    timeout: float | None,
) -> Any:
    """``handle.request`` (``via="control"``) or ``request_via_data``, sent from this thread;
    NOT_SENT when it must go through the loop (the worker is not running, say)."""
    check_timeout("timeout", timeout)
    if type(method) is not str or method.startswith("$/"):
        check_request_method(method)
    channel = handle._running_channel(via)
    if channel is None:
        return NOT_SENT
    limit = handle._settings.request_timeout if timeout is None else timeout
    if limit is None:  # the manager's request_timeout=None: no limit
        limit = math.inf
    incarnation_done = handle._incarnation_done
    answer = Answer()
    waiter = Pending(answer)  # type: ignore[arg-type]  # set() is all the channel calls
    try:
        if not channel.request_from_thread(method, params, waiter, caller.call_soon):
            return NOT_SENT
        answered = answer.wait(limit)
    except BaseException:  # KeyboardInterrupt: the call is cancelled, as on the loop
        if channel.withdraw_from_thread(waiter):
            with contextlib.suppress(RuntimeError):  # the loop has ended: nothing to tell
                caller.start(channel.cancel_withdrawn, waiter, False)
        raise
    if not answered:
        if channel.withdraw_from_thread(waiter):
            with contextlib.suppress(RuntimeError):
                caller.start(channel.cancel_withdrawn, waiter, True)
            raise handle._timeout_error(via, method, limit) from None
        answer.wait(math.inf)  # answered as the time ran out: the answer is being set
    if waiter.error is None:
        return waiter.result
    return _fail(caller, handle, waiter.error, via, method, incarnation_done)


def _fail(
    caller: Caller,
    handle: ProcessHandle,
    error: BaseException,
    via: str,
    method: str,
    incarnation_done: Any,
) -> Any:
    """Raise what the async API raises for ``error`` (:func:`translate_call_error`, on the
    loop: for a closed channel it waits for the exit status there)."""
    if not isinstance(error, IpcError):
        raise error
    failure: BaseException = fresh(error)
    try:
        crash = functools.partial(handle._crash, incarnation_done)
        failure = caller.call(translate_call_error, failure, handle.id, via, method, crash)
    except RuntimeError:  # the loop has ended (the manager closed): no verdict to wait for
        if isinstance(failure, RemoteError):
            failure = annotated(failure, handle.id, via, method)
    raise failure from failure.__cause__  # a remote stack, or nothing


def direct_notify(
    caller: Caller, handle: ProcessHandle, via: str, method: str, params: Any
) -> bool:
    """``handle.notify`` or ``notify_via_data`` written by this thread: False when it must go
    through the loop (then nothing was sent)."""
    check_user_method(method)
    channel = handle._running_channel(via)
    return channel is not None and channel.notify_from_thread(method, params, caller.call_soon)


def direct_pool_call(
    caller: Caller,
    pool: WorkerPool,
    via: str,
    method: str,
    params: Any,
    timeout: float | None,
    retries: int,
) -> Any:
    """``pool.request`` or ``request_via_data`` sent from this thread to the least-loaded
    running worker; NOT_SENT when it must go through the loop (then nothing was sent). A crash
    with ``retries`` left sends it again through the loop, to another worker."""
    if not isinstance(retries, int) or retries < 0:
        return NOT_SENT  # the loop's way raises the ValueError
    member = pool.acquire_from_thread()
    if member is None:
        return NOT_SENT
    try:
        return direct_handle_call(caller, member.handle, via, method, params, timeout)
    except (WorkerCrashed, WorkerUnavailable):
        if not retries or pool._closed:
            raise
    finally:
        pool._release(member, caller.call_soon)
    again = functools.partial(pool_call, pool, via, method, params, timeout, retries)
    return caller.call(functools.partial(again, failed=member.handle))
