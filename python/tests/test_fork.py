"""A parent that forks while its manager runs (a pre-fork server, a library that forks and exits
with ``sys.exit()``): the child must leave the parent's workers, sockets and event loop alone.

Found by a drill: a child ending with ``sys.exit(0)`` inside ``async with ProcessManager`` killed
the parent's worker and took its descriptors out of the parent's epoll set (the two share it), so
the parent's next request and its exit from the block hung for ever. Each scenario is a parent
script run in a process of its own; it prints what the parent and the child saw.
"""

from __future__ import annotations

import textwrap

from workers import run_parent

ASYNC_PARENT = textwrap.dedent(
    """
    import os, sys
    import anyio
    from aspect_ipc import DataChannelOptions, ProcessManager

    async def main():
        async with ProcessManager(namespace=sys.argv[2]) as manager:
            handle = await manager.spawn(
                "w", executable=sys.executable, args=[sys.argv[1]],
                data_channel=DataChannelOptions(enabled=True),
            )
            read, write = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(read)
                said = []
                for attempt in (
                    lambda: handle.request("add", {"a": 1, "b": 2}),
                    lambda: handle.request_via_data("echo", [1]),
                    lambda: manager.spawn("x", executable=sys.executable, args=[sys.argv[1]]),
                    lambda: handle.stop(),
                ):
                    try:
                        await attempt()
                        said.append("done")
                    except RuntimeError as exc:
                        said.append("forked child" in str(exc))
                os.write(write, repr(said).encode())
                os.close(write)
                sys.stderr = open(os.devnull, "w")
                sys.exit(0)  # through the block's exit, and asyncio.run's clean-up
            os.close(write)
            with os.fdopen(read) as pipe:
                print("child", pipe.read(), flush=True)
            os.waitpid(child, 0)
            with anyio.fail_after(20):
                print("parent", await handle.request("add", {"a": 2, "b": 3}),
                      await handle.request_via_data("echo", [b"x"]), handle.state.value, flush=True)
        print("closed", flush=True)

    anyio.run(main)
    """
)

BLOCKING_PARENT = textwrap.dedent(
    """
    import os, sys
    from aspect_ipc import DataChannelOptions
    from aspect_ipc.sync import ProcessManager

    with ProcessManager(namespace=sys.argv[2]) as manager:
        handle = manager.spawn(
            "w", executable=sys.executable, args=[sys.argv[1]],
            data_channel=DataChannelOptions(enabled=True),
        )
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read)
            try:
                handle.request_via_data("echo", [1])
                said = "done"
            except RuntimeError as exc:
                said = "forked child" in str(exc)
            os.write(write, repr(said).encode())
            os.close(write)
            sys.exit(0)  # through the with block: close() must not wait for a loop thread
        os.close(write)
        with os.fdopen(read) as pipe:
            print("child", pipe.read(), flush=True)
        os.waitpid(child, 0)
        print("parent", handle.request("add", {"a": 2, "b": 3}),
              handle.request_via_data("echo", [b"x"]), flush=True)
    print("closed", flush=True)
    """
)


def test_a_forked_child_that_exits_leaves_the_parents_workers_alone_and_cannot_use_them() -> None:
    done = run_parent(ASYNC_PARENT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "child [True, True, True, True]",  # each a RuntimeError naming the forked child
        "parent 5 [b'x'] running",
        "closed",
    ], done.stderr[-3000:]


def test_a_forked_child_of_a_blocking_parent_neither_hangs_nor_harms_it() -> None:
    done = run_parent(BLOCKING_PARENT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["child True", "parent 5 [b'x']", "closed"], done.stderr[
        -3000:
    ]
