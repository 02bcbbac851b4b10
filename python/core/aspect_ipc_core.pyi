"""The compiled core of aspect-ipc (see aspect_ipc._compiled)."""

API_VERSION: int
__version__: str

def unpack(data: object, declined: object, /) -> object:
    """The value the MessagePack in ``data`` (a buffer) holds, checked under the spec's mapping,
    or ``declined`` when the Python path must decode it (an ext type, a key that is not a string,
    invalid UTF-8, trailing or missing bytes, more than 32 levels of nesting)."""

def pack(value: object, /) -> bytes | None:
    """``value`` packed as MessagePack under the spec's mapping, or None when the Python path
    must decide (anything but exact plain types, a problem to name, a binary of 64 KiB or more,
    more than 32 levels of nesting)."""

def pack_frame(limit: int, value: object, /) -> bytes | None:
    """``value`` packed as :func:`pack` packs it, behind its 4-byte big-endian length: a data
    channel's whole frame. None where :func:`pack` gives None, or when the payload is longer
    than ``limit`` bytes."""

def take_answers(
    answers: list[object], declined: object, buffer: object, start: int, limit: int, /
) -> tuple[int, object]:
    """Take the successful responses among the complete frames of ``buffer`` (4-byte big-endian
    length, then MessagePack) from ``start``: append each one's id and result to ``answers``
    (flat), and stop at the first frame that is anything else, incomplete, empty or over
    ``limit`` bytes. Returns where it stopped, and the value of a frame there that was decoded
    but not taken, else ``declined`` (the Python path must read that frame itself)."""
