"""The compiled core of aspect-ipc (see aspect_ipc._compiled)."""

API_VERSION: int
__version__: str

def pack(value: object, /) -> bytes | None:
    """``value`` packed as MessagePack under the spec's mapping, or None when the Python path
    must decide (anything but exact plain types, a problem to name, a binary of 64 KiB or more)."""
