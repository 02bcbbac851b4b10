"""WorkerPool: several workers of one kind behind one request method, and ``map``.

Theory of operation: a pool keeps *members*, one per slot; each member is an ordinary supervised
:class:`ProcessHandle` (restart policy included) plus a count of the requests in flight on it.
A request goes to the member with the fewest requests in flight among those that are running
(one pass over the members: O(size)); failing that, to one that is (re)starting, whose handle
makes the request wait until it runs (:mod:`._pool_members`). A member that has failed for good
is skipped and listed in :attr:`WorkerPool.failed`.

Recycling (``max_requests_per_worker``): the request that reaches a member's quota retires it at
once: it takes no new request, its replacement is spawned right away (id ``<name>-<slot>.<n>``,
n counting the slot's generations), and once its last request in flight has answered it is
stopped. No request is lost: the retiring member finishes all it accepted.

The pool's background work (replacements, stops, the feeders of ``map``) runs in the manager's
task group, so that leaving the manager stops the pool and everything it started. The path of a
request (retries, input streams) and the pool's streams are in :mod:`._pool_streams`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from ._calls import check_grace, check_timeout
from ._handle_streams import Items
from ._loggers import library_logger
from ._option_checks import check_flag
from ._pool_map import PoolMap
from ._pool_members import LIVE, Member, Members
from ._pool_streams import PoolStream, pool_call
from ._stream_messages import DEFAULT_WINDOW
from .errors import WorkerUnavailable
from .handle import ProcessHandle
from .option_types import SpawnOptions
from .options import ProcessEvent, WorkerState

if TYPE_CHECKING:
    from .manager import ProcessManager

__all__ = ["MAP_DEPTH", "WorkerPool"]

logger = library_logger("aspect_ipc.pool")

MAP_DEPTH = 4
"""Default ``map`` window per worker: ``max_in_flight = 2 * MAP_DEPTH * size`` (requests sent
or answered but not yet consumed). Four in flight per worker keeps a worker busy while its
answers travel back; the factor 2 leaves room for answers waiting for an earlier, slower one."""


class WorkerPool(Members):
    """``size`` workers of one kind, obtained from :meth:`ProcessManager.spawn_pool`.

    Requests go to the live worker with the fewest requests in flight. Every worker is
    supervised as if spawned alone, with the restart policy given to ``spawn_pool``.
    """

    def __init__(
        self,
        manager: ProcessManager,
        name: str,
        spawn_options: SpawnOptions,
        *,
        max_requests_per_worker: int | None = None,
    ) -> None:
        """Made by :meth:`ProcessManager.spawn_pool`; do not call directly."""
        if max_requests_per_worker is not None and (
            not isinstance(max_requests_per_worker, int) or max_requests_per_worker < 1
        ):
            raise ValueError(
                "max_requests_per_worker must be a positive integer or None, not "
                f"{max_requests_per_worker!r}"
            )
        self.name = name
        self.max_requests_per_worker = max_requests_per_worker
        self._manager = manager
        self._options = spawn_options
        self._members: list[Member | None] = []
        self._retiring: set[Member] = set()
        # Per slot, how many workers it has had, so that every worker gets an id of its own:
        # kept when the pool shrinks (a retiring worker may still hold a slot's last id).
        self._generations: list[int] = []
        self._resizing = anyio.Lock()  # one resize at a time: each reads and changes the slots
        self._pending = 0  # replacements being spawned
        self._changed = anyio.Event()
        self._closed = False
        self._counts = threading.Lock()  # in_flight and served: blocking callers count too

    def __repr__(self) -> str:
        return f"<WorkerPool {self.name!r} size={self.size}>"

    # -- public API ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of slots (what ``spawn_pool`` or the last ``resize`` asked for)."""
        return len(self._members)

    @property
    def handles(self) -> list[ProcessHandle]:
        """The current worker of every slot, in slot order (a slot being refilled is absent)."""
        return [m.handle for m in self._members if m is not None]

    @property
    def failed(self) -> list[ProcessHandle]:
        """The workers that have failed for good (restart policy exhausted); the pool skips
        them. ``await pool.resize(pool.size)`` replaces them."""
        return [h for h in self.handles if h.state is WorkerState.FAILED]

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        input: Items | None = None,
    ) -> Any:
        """Call ``method`` on the control channel of the least-loaded live worker.

        Args:
            timeout: as in :meth:`ProcessHandle.request`, for each attempt.
            retries: how many times a request whose worker crashed is sent again, to another
                live worker when there is one. Only for idempotent methods: the crashed worker
                may have done part of the work.
            input: an iterable or async iterable sent as the input stream (as in
                :meth:`ProcessHandle.request`); read once, so ``retries`` must then be 0.

        Raises:
            ValueError: ``retries`` is negative, or given with ``input``.
            WorkerCrashed: the worker died with the request pending (and no retry was left).
            WorkerUnavailable: the pool is stopped or has no live worker.
            RemoteError, RequestTimeout: as for :meth:`ProcessHandle.request`.
        """
        return await pool_call(self, "control", method, params, timeout, retries, input)

    async def request_via_data(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        retries: int = 0,
        input: Items | None = None,
    ) -> Any:
        """Like :meth:`request`, on the data channel (the workers need a data channel)."""
        return await pool_call(self, "data", method, params, timeout, retries, input)

    def stream(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Items | None = None,
    ) -> PoolStream:
        """``async for item in pool.stream(...)``: :meth:`ProcessHandle.stream` (same
        ``window`` and ``input``) on the least-loaded live worker, which it counts as one
        request in flight until the stream ends. Never retried: a worker that dies mid-stream
        fails the next step with ``WorkerCrashed``. See :class:`PoolStream`.
        """
        return PoolStream(self, "control", method, params, window, input)

    def stream_via_data(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        window: int = DEFAULT_WINDOW,
        input: Items | None = None,
    ) -> PoolStream:
        """Like :meth:`stream`, on the data channel (binary items travel as is)."""
        return PoolStream(self, "data", method, params, window, input)

    def map(
        self,
        method: str,
        iterable: Iterable[Any] | AsyncIterable[Any],
        *,
        via: str = "data",
        ordered: bool = True,
        max_in_flight: int | None = None,
        retries: int = 0,
        return_exceptions: bool = False,
        timeout: float | None = None,
    ) -> PoolMap:
        """Call ``method(item)`` for every item; an async iterator of the results.

        The input (a plain or an async iterable) is read lazily: at most ``max_in_flight``
        items are sent or answered-but-not-yet-consumed at any time (default
        ``2 * MAP_DEPTH * size``, i.e. 8 per worker). Results come in input order, or with
        ``ordered=False`` as they arrive. Leaving the loop early (``break``, an exception)
        cancels what is in flight; ``async with pool.map(...) as results:`` does it at once
        and for sure, a bare ``async for`` when the iterator is garbage-collected.

        Args:
            via: ``"data"`` (MessagePack over the socket) or ``"control"``.
            retries: as in :meth:`request`, per item.
            return_exceptions: yield a failed item's exception in its place instead of raising
                the first failure (in input order when ordered).
            timeout: per request, as in :meth:`request`.
        """
        if via not in ("data", "control"):
            raise ValueError(f"via must be 'data' or 'control', not {via!r}")
        check_flag("ordered", ordered)
        check_flag("return_exceptions", return_exceptions)
        check_timeout("timeout", timeout)  # here, not at the first item (none, if it is empty)
        if max_in_flight is None:
            max_in_flight = 2 * MAP_DEPTH * max(self.size, 1)
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be a positive integer, not {max_in_flight!r}")

        async def call(item: Any) -> Any:
            return await pool_call(self, via, method, item, timeout, retries)

        return PoolMap(self._task_group_start, call, iterable, ordered, max_in_flight,
                       return_exceptions)  # fmt: skip

    async def resize(self, size: int) -> None:
        """Grow to ``size`` workers (spawned concurrently, returns once they run) or shrink
        (the last slots' workers finish their requests in flight, then stop). Either way, the
        workers of the slots kept that have failed for good are replaced: ``resize(pool.size)``
        replaces them and nothing else. Calls run one at a time, in the order they came."""
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a non-negative integer, not {size!r}")
        self._check_open()
        async with self._resizing:
            self._check_open()
            leaving = [m for m in self._members[size:] if m is not None]
            failed = [
                m
                for m in self._members[:size]
                if m is not None and m.handle.state is WorkerState.FAILED
            ]
            del self._members[size:]
            for member in failed:
                self._members[member.slot] = None
            start = len(self._members)
            self._members.extend([None] * (size - start))
            slots = [m.slot for m in failed] + list(range(start, size))
            for slot in slots:  # a new id for a slot that had a worker
                if slot < len(self._generations):
                    self._generations[slot] += 1
                else:
                    self._generations.append(0)
            self._pending += len(slots)
            self._notify()  # requests waiting for a worker look again (none may be left)
            try:
                async with anyio.create_task_group() as task_group:
                    for member in leaving:
                        task_group.start_soon(self._retire, member, False)
                    for member in failed:
                        self._manager._workers.forget(member.handle)
                    for slot in slots:
                        task_group.start_soon(self._fill, slot)
            except BaseExceptionGroup as group:
                # The workers' start failed, most likely all of them for one reason: raised as
                # spawn() raises it (WorkerIdInUse, ExecutableNotFound...), not in a group.
                failure = _first_failure(group)
                if failure is None:
                    raise
                raise failure from None
            finally:
                self._pending -= len(slots)
                self._notify()

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop every worker of the pool (see :meth:`ProcessHandle.stop`); requests and maps
        still running fail with ``WorkerUnavailable`` (ValueError: a bad ``grace``, before any
        stops)."""
        check_grace("grace", grace)
        self._closed = True
        members = [m for m in self._members if m is not None] + list(self._retiring)
        self._notify()
        async with anyio.create_task_group() as task_group:
            for member in members:
                task_group.start_soon(functools.partial(member.handle.stop, grace=grace))

    # -- internals ----------------------------------------------------------------------------

    def _worker_id(self, slot: int) -> str:
        generation = self._generations[slot]
        return f"{self.name}-{slot}" if generation == 0 else f"{self.name}-{slot}.{generation}"

    async def _fill(self, slot: int) -> None:
        worker_id = self._worker_id(slot)
        handle = await self._manager.spawn(worker_id, **self._options)
        if slot < len(self._members) and self._members[slot] is None and not self._closed:
            self._members[slot] = Member(slot, handle)
            handle.on("failed", self._report_failed)
            self._notify()  # requests waiting for a worker (a pool of one, recycling) go on
        else:  # the slot went away (a shrink, a stop) while its worker started
            await handle.stop()

    def _report_failed(self, event: ProcessEvent) -> None:
        logger.warning(
            "pool %s: worker %s has failed for good and is skipped (%d of %d live); see "
            "pool.failed; 'await pool.resize(pool.size)' replaces it",
            self.name, event.worker_id, self.size - len(self.failed), self.size,
            extra={"worker_id": event.worker_id},
        )  # fmt: skip

    def _task_group_start(self, function: Any, what: str = "map") -> None:
        self._check_open()
        task_group = self._manager._task_group
        if task_group is None:
            raise WorkerUnavailable(f"pool {self.name!r}: its manager is closed")
        task_group.start_soon(function, name=f"{what} of pool {self.name}")

    async def _acquire(self, avoid: set[ProcessHandle]) -> Member:
        """The member for the next request or stream, counted in flight until ``_release``."""
        member = await self._pick(avoid)
        with self._counts:
            member.in_flight += 1
            member.served += 1
        limit = self.max_requests_per_worker
        if limit is not None and member.served >= limit and not member.retiring:
            self._recycle(member)
        return member

    def _recycle(self, member: Member) -> None:
        """Retire ``member`` now and start its replacement at once (in the background)."""
        member.retiring = True
        slot = member.slot
        self._members[slot] = None
        self._generations[slot] += 1
        self._pending += 1
        self._task_group_start(lambda: self._replace(member), "recycling")

    async def _replace(self, member: Member) -> None:
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._retire, member, True)
                try:
                    await self._fill(member.slot)
                except Exception as exc:
                    if not (self._closed or self._manager._closed):  # not a failure: the end
                        logger.warning("pool %s: replacing %s failed: %s", self.name,
                                       member.handle.id, exc,
                                       extra={"worker_id": member.handle.id})  # fmt: skip
        finally:
            self._pending -= 1
            self._notify()

    async def _retire(self, member: Member, recycled: bool) -> None:
        """Let ``member`` finish what it accepted, then stop it."""
        member.retiring = True
        self._retiring.add(member)
        try:
            while member.in_flight and member.handle.state in LIVE:
                await self._changed.wait()
            await member.handle.stop()
            self._manager._workers.forget(member.handle)
        finally:
            self._retiring.discard(member)
            if recycled:
                logger.info(  # as the docs say: what the pool does to its workers is INFO
                    "pool %s: recycled %s",
                    self.name,
                    member.handle.id,
                    extra={"worker_id": member.handle.id},
                )


def _first_failure(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The first ordinary exception in ``group`` (None if there is a cancellation in it, or
    only BaseExceptions: those go on as the group)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        item = pending.pop(0)
        if isinstance(item, BaseExceptionGroup):
            pending[:0] = list(item.exceptions)
        else:
            leaves.append(item)
    if any(not isinstance(leaf, Exception) for leaf in leaves):
        return None
    return leaves[0] if leaves and isinstance(leaves[0], Exception) else None
