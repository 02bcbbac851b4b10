"""Another user's file at a worker's data path (spec 6.4, 7.3): in a directory everyone can write
to (``/tmp``), a local user can take a predictable path first. The error names the owner and
what to do (a directory of your own), and a stale socket this process may not remove is refused
up front instead of failing the worker's listen.

The files are given to another user with chown, so these tests need root (CI runs as root); the
refusal of a stale socket is seen from a forked child that has become that other user.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aspect_ipc import AddressInUse, DataChannelOptions, ProcessManager
from aspect_ipc._socket_path import probe_socket
from workers import namespace, python_worker

NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory like /tmp: everyone may write, sticky; reachable by every user (pytest's
    tmp_path is not: its parents are root's, 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="aspect-shared-"))
    directory.chmod(0o1777)
    yield directory
    shutil.rmtree(directory)


@needs_root
@pytest.mark.anyio
async def test_another_users_file_at_the_data_path_is_named_with_its_owner(shared: Path) -> None:
    ns = namespace()
    async with ProcessManager(namespace=ns, socket_dir=str(shared)) as manager:
        taken = shared / f"{ns}-w.sock"
        taken.write_text("first!")
        os.chown(taken, NOBODY, NOBODY)
        with pytest.raises(AddressInUse) as caught:
            await manager.spawn(
                "w", **python_worker(), data_channel=DataChannelOptions(enabled=True)
            )
        message = str(caught.value)
        assert f"path exists and is not a socket: {taken}" in message
        assert f"another user, nobody (uid {NOBODY})" in message
        assert "socket_dir" in message
        assert taken.read_text() == "first!"  # left alone


@needs_root
def test_a_stale_socket_this_user_may_not_remove_is_refused_naming_its_owner(shared: Path) -> None:
    stale = shared / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()  # nobody listens: stale, root's, in a sticky directory
    stale.chmod(0o666)  # anyone may connect (and so tell it is stale)
    said = _probe_as_nobody(stale)
    assert said.startswith(f"AddressInUse: a stale socket is at {stale}: nobody listens on it")
    assert "may not remove it. It belongs to another user, root (uid 0)" in said
    assert stale.exists()
    assert probe_socket(str(stale)) is True  # its owner may remove it
    # A socket the other user may not even connect to (0600, as workers' are): live or stale,
    # it cannot tell, and says whose it is.
    stale.chmod(0o600)
    assert _probe_as_nobody(stale).startswith(
        f"AddressInUse: another user's socket is at {stale}, and this process may not connect"
    )


def _probe_as_nobody(path: Path) -> str:
    """What ``probe_socket(path)`` raises in a forked child that has become user nobody."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                probe_socket(str(path))
                os.write(write, b"no error")
            except Exception as exc:
                os.write(write, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(child, 0)
    return said
