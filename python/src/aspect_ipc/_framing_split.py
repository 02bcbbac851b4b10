"""A frame's large binary received straight into the ``bytes`` object that decoding returns.

Without this, a 16 MiB binary in a frame is held twice: once in the buffer the frame is received
into, once in the ``bytes`` MessagePack decodes it to (msgpack copies every ``bin``). Here the
length-prefixed decoder finds the binary's header near the start of a large frame, receives the
binary's bytes straight into a new ``bytes`` object of exactly its size, and the frame it returns
is a :class:`SplitFrame`: the frame's other bytes, with a placeholder (a ``fixext 16`` holding a
random marker, which no peer can guess) where the binary was. The MessagePack codec decodes it
with the placeholder resolved to that ``bytes`` object: one copy of the binary instead of two, and
no copy made.

The ``bytes`` object is made with CPython's documented way of filling a new one (``PyBytes_
FromStringAndSize(NULL, n)``, then writing through ``PyBytes_AsString`` before anything else
sees it): it is written only while the decoder alone holds it, and returned once it is full.
Elsewhere (PyPy, no ctypes) :data:`new_bytes` is None and frames are received as before. On
glibc, when binaries move to a new place in the heap, the free memory is given back (see
``_trim`` below): the heap keeps two binaries' places, not three or four.
"""

from __future__ import annotations

import functools
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["LARGE_BINARY", "PLACEHOLDER_CODE", "SplitFrame", "Splitter", "find_binary", "new_bytes"]

Buffer = bytes | bytearray | memoryview

LARGE_BINARY = 64 * 1024
"""Binaries from this size on are received into their own ``bytes`` object."""
PLACEHOLDER_CODE = 0
"""The ext type of the placeholder (its 16 bytes, a random marker, are what identify it)."""
# The binary's header must start within this many bytes of the frame's start, and be among its
# first _SCAN_TOKENS MessagePack tokens (a JSON-RPC envelope has a dozen): past that, the frame is
# received as a whole, as before.
_SCAN_LIMIT = 4096
_SCAN_TOKENS = 64
_TAIL_LIMIT = 64 * 1024
_PLACEHOLDER_SIZE = 18  # fixext 16: 0xd8, the type, 16 bytes


def _bytes_maker() -> Callable[[int], tuple[bytes, memoryview, int]] | None:
    if sys.implementation.name != "cpython":
        return None
    try:
        import ctypes

        make = ctypes.pythonapi.PyBytes_FromStringAndSize
        address_of = ctypes.pythonapi.PyBytes_AsString
        view_of = ctypes.pythonapi.PyMemoryView_FromMemory
    except (ImportError, AttributeError, OSError):
        return None
    make.restype, make.argtypes = ctypes.py_object, (ctypes.c_void_p, ctypes.c_ssize_t)
    address_of.restype, address_of.argtypes = ctypes.c_void_p, (ctypes.py_object,)
    view_of.restype = ctypes.py_object
    view_of.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
    writable = 0x200  # PyBUF_WRITE

    def new_bytes(size: int) -> tuple[bytes, memoryview, int]:
        blob: bytes = make(None, size)
        address: int = address_of(blob)
        # A view of the storage, not an object of it: it does not keep the bytes alive.
        storage: memoryview = view_of(address, size, writable)
        return blob, storage, address

    return new_bytes


new_bytes = _bytes_maker()
"""``new_bytes(n)``: a new ``bytes`` of ``n`` unset bytes, a writable view of its storage (write
all of it before letting the ``bytes`` go) and the storage's address. None where not possible."""


def _trimmer() -> Callable[[], object] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        _ = libc.gnu_get_libc_version  # glibc's (musl and others have no malloc_trim)
        trim = libc.malloc_trim
    except (ImportError, AttributeError, OSError):
        return None
    trim.restype, trim.argtypes = ctypes.c_int, (ctypes.c_size_t,)
    return functools.partial(trim, 0)


# glibc keeps freed memory of a binary's size in its heap, and takes the next binary from it: no
# page to fault in again, and a 16 MiB echo loop runs in two places that take turns. But when a
# small allocation lands in the free place first, the next binary goes to a new place, and from
# then on three places take turns, all resident (a 16 MiB echo loop's RSS: 2 payloads, then 3, and
# 4 once in 10,000 echoes). A binary in a new place (overlapping neither of the decoder's last
# two: small allocations shift a place a little) gives the free memory back (malloc_trim), and so
# do the next two binaries: by then the binaries are back to two places, the others paged out.
# At most one such series a second: with many channels taking turns, binaries move all the time,
# and each trim costs faulting pages in again.
_trim = _trimmer() if new_bytes is not None else None
_TRIM_INTERVAL = 1.0
_TRIMS = 3
_trims = [0.0, 0]  # when the last series of trims began (time.monotonic()), trims left in it


def _moved() -> None:
    now = time.monotonic()
    if now >= _trims[0] + _TRIM_INTERVAL:
        _trims[0], _trims[1] = now, _TRIMS


# Bytes after each MessagePack type byte, before its payload: fixed sizes (the length prefix of
# str/bin/ext included), and the size of the length prefix for str/bin/ext.
_FIXED = [1] * 256
_PREFIX = [0] * 256
# float 32/64, uint 8-64, int 8-64, fixext 1-16, array 16/32, map 16/32
for _byte, _size in zip(
    range(0xCA, 0xD9), (5, 9, 2, 3, 5, 9, 2, 3, 5, 9, 3, 4, 6, 10, 18), strict=True
):
    _FIXED[_byte] = _size
for _byte, _size in zip(range(0xDC, 0xE0), (3, 5, 3, 5), strict=True):
    _FIXED[_byte] = _size
for _byte, _size in {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}.items():
    _PREFIX[_byte] = _size
for _byte, _size in {0xC7: 1, 0xC8: 2, 0xC9: 4}.items():
    _PREFIX[_byte] = _size  # ext 8/16/32: the length, then a type byte (counted below)
for _byte in range(0xA0, 0xC0):
    _FIXED[_byte] = 1 + (_byte & 0x1F)  # fixstr


def find_binary(data: Buffer, frame_size: int) -> tuple[int, int] | bool | None:
    """Where the first large ``bin 32`` of a MessagePack frame starts: ``(offset, length)``.

    ``data`` is the frame's start (what has arrived). False: too little has arrived to tell;
    None: no such binary near the start (the frame is received as a whole).
    """
    position, available = 0, len(data)
    for _ in range(_SCAN_TOKENS):
        if position >= _SCAN_LIMIT:
            return None
        if position >= available:
            return False
        kind = data[position]
        if kind == 0xC1:  # never used: the codec reports the frame
            return None
        prefix = _PREFIX[kind]
        if not prefix:
            position += _FIXED[kind]
            continue
        if position + 1 + prefix > available:
            return False
        size = int.from_bytes(data[position + 1 : position + 1 + prefix], "big")
        if kind == 0xC6 and size >= LARGE_BINARY:
            # The frame's end after the binary is read into a buffer and copied once more: a
            # frame with more large binaries after this one is received as a whole instead.
            rest = frame_size - position - 5 - size
            return (position, size) if 0 <= rest <= _TAIL_LIMIT else None
        position += 1 + prefix + size + (1 if 0xC7 <= kind <= 0xC9 else 0)
    return None


class SplitFrame(bytearray):
    """A frame whose large binary was received into a ``bytes`` of its own (see the module).

    Its bytes are the frame's, with a placeholder in place of the binary; ``len()`` is the
    frame's size on the wire; :meth:`whole` makes the frame's bytes (for a bad-input hook).
    """

    blob: bytes
    marker: bytes
    at: int  # where the placeholder starts
    size: int

    def __len__(self) -> int:
        return self.size

    def resolve(self, code: int, data: bytes) -> Any:
        """The value of an ext: the binary for the placeholder; None for anything else."""
        return self.blob if code == PLACEHOLDER_CODE and data == self.marker else None

    def whole(self) -> bytes:
        """The frame as it was on the wire."""
        with memoryview(self) as view:
            header = b"\xc6" + len(self.blob).to_bytes(4, "big")
            rest = view[self.at + _PLACEHOLDER_SIZE :]
            return b"".join((view[: self.at], header, self.blob, rest))


class Splitter:
    """One decoder's frames in progress: the bytes before the binary, the binary, the marker."""

    def __init__(self) -> None:
        self.marker = secrets.token_bytes(16)
        self.head = b""  # the frame's bytes before the binary's header
        self.blob = b""
        self.rest = 0  # bytes of the frame after the binary
        # Where the last two binaries were: (first byte, end) each.
        self._places: tuple[tuple[int, int], ...] = ()

    def start(self, head: Buffer, size: int, frame_size: int) -> memoryview:
        """Begin a frame whose bytes before its binary's header are ``head``, its binary ``size``
        bytes long: return a view of the binary's storage, to fill before :meth:`finish`."""
        assert new_bytes is not None
        self.head = bytes(head)
        self.blob, storage, address = new_bytes(size)
        self.rest = frame_size - len(head) - 5 - size
        place = (address, address + size)
        places = self._places
        if _trim is not None:
            elsewhere = all(end <= place[0] or place[1] <= start for start, end in places)
            if elsewhere and len(places) == 2:
                _moved()
            if _trims[1]:
                _trims[1] -= 1
                _trim()
        self._places = (place, *places[:1])
        return storage

    def drop(self) -> None:
        """Forget the frame in progress (the stream failed)."""
        self.head, self.blob, self.rest = b"", b"", 0

    def finish(self, tail: Buffer) -> SplitFrame:
        """The frame, once the binary is full and ``tail`` holds the rest of the frame."""
        frame = SplitFrame(self.head)
        frame.blob, frame.marker, frame.at = self.blob, self.marker, len(self.head)
        frame.size = len(self.head) + 5 + len(self.blob) + len(tail)
        frame += b"\xd8" + PLACEHOLDER_CODE.to_bytes(1, "big") + self.marker
        frame += tail
        self.head, self.blob = b"", b""
        return frame


def whole_frame(frame: Buffer) -> Buffer:
    """``frame`` as it was on the wire (a :class:`SplitFrame` put together again)."""
    return frame.whole() if type(frame) is SplitFrame else frame
