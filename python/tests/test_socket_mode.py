"""The worker's data socket (spec 7.3): 0600 from its creation, whatever the umask, and never
a chmod by path: a socket file swapped for a symlink between bind and the check fails the
listen and leaves the symlink's target as it was (real sockets and files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aspect_ipc import TransportFactory
from aspect_ipc.errors import TransportError

pytestmark = pytest.mark.anyio


async def test_the_socket_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        server = TransportFactory.create_pipe_server()
        await server.listen(str(tmp_path / "w.sock"))
    finally:
        os.umask(previous)
    info = os.lstat(tmp_path / "w.sock")
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    await server.aclose()
    assert not (tmp_path / "w.sock").exists()


async def test_a_socket_swapped_for_a_symlink_after_bind_fails_and_touches_nothing(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    victim.chmod(0o644)
    path = tmp_path / "w.sock"

    def swap(bound: str) -> None:  # what a user who can write to the directory may do
        (tmp_path / "link").symlink_to(victim)
        os.rename(tmp_path / "link", bound)

    server = TransportFactory.create_pipe_server()
    server._after_bind = swap
    with pytest.raises(TransportError, match=r"was replaced after bind .*refusing to listen"):
        await server.listen(str(path))
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644  # not made 0600 through the link
    assert path.is_symlink()  # left where it was
