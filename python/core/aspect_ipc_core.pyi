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
