"""The seed's payloads: what they are, what they should return, and what they cost to encode.

The dual-channel example (``examples/dual-channel/parent.py``) sends two bulk requests on the data
channel: ``processItems`` with 1000 items ``{"id": i, "value": float}`` and ``processMatrix``
with a 100x100 matrix of floats, built from ``random.Random(42)`` in that order. The benchmark
sends the same two payloads to the test workers' quiet copies of those methods
(``integration-tests/WORKERS.md``), as JSON on the control channel and as MessagePack on the data
channel, and measures here, in this process, for each form:

- the bytes on the wire of the request and of the response, exactly as framed;
- the time to encode and to decode each of them with the library's own codecs and framing
  (``JsonCodec`` + ``LineDelimitedFraming``, ``MessagePackCodec`` + ``LengthPrefixedFraming``,
  with ``JsonRpcProtocol`` building and classifying the messages), as a channel does;

and the same for the two baselines: ``multiprocessing.Pipe`` sends the Python objects pickled
(``ForkingPickler`` and a 4-byte header, as ``Connection.send`` does), and the raw socket sends
the information packed as fixed-width binary (no codec at all, so it has no encode or decode time).
"""

from __future__ import annotations

import random
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any

from aspect_ipc import (
    Codec,
    Framing,
    JsonCodec,
    JsonRpcProtocol,
    LengthPrefixedFraming,
    LineDelimitedFraming,
    MessagePackCodec,
)
from measure import Budget

__all__ = [
    "CHANNELS",
    "ENCODINGS",
    "SeedPayload",
    "WireCost",
    "compute",
    "measure_wire_costs",
    "median_costs",
    "seed_payloads",
]

CHANNELS = ("control", "data")
"""aspect-ipc's two channels, in the order they are reported."""

ENCODINGS = ("raw", "pickle", "control", "data")
"""The forms of a seed payload: raw socket (packed binary), mp.Pipe (pickle), then aspect-ipc's
control channel (a JSON line) and data channel (a MessagePack frame)."""

_REQUEST_ID = 1
"""The id of every encoded request and response (a running parent's ids grow: a few bytes more)."""


@dataclass(frozen=True)
class SeedPayload:
    """One of the seed's requests: ``method(params)``, which must return ``expected``.

    ``packed_request`` and ``packed_response`` are the payload sizes of the same information as
    fixed-width binary, which is what the raw socket baseline sends.
    """

    key: str
    label: str
    method: str
    params: dict[str, Any]
    expected: dict[str, Any]
    packed_request: int
    packed_response: int


def seed_payloads() -> tuple[SeedPayload, ...]:
    """processItems(1000) and processMatrix(100x100), built as the dual-channel example does."""
    rng = random.Random(42)
    items = [{"id": i, "value": rng.random() * 100} for i in range(1000)]
    matrix = [[rng.random() for _ in range(100)] for _ in range(100)]
    items_params: dict[str, Any] = {"items": items}
    matrix_params: dict[str, Any] = {"matrix": matrix}
    return (
        SeedPayload(
            key="processItems_1000",
            label="processItems(1000)",
            method="processItems",
            params=items_params,
            expected=compute("processItems", items_params),
            # int64 id + float64 value per item; the answer: int64 count + float64 sum
            packed_request=16 * len(items),
            packed_response=16,
        ),
        SeedPayload(
            key="processMatrix_100x100",
            label="processMatrix(100x100)",
            method="processMatrix",
            params=matrix_params,
            expected=compute("processMatrix", matrix_params),
            # two uint32 dimensions + float64 per value; the answer: float64 sum + float64 avg
            packed_request=8 + 8 * 100 * 100,
            packed_response=16,
        ),
    )


def compute(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """What the test workers return for ``method(params)`` (integration-tests/WORKERS.md)."""
    if method == "processItems":
        items = params["items"]
        total = 0.0
        for item in items:  # in order, like every worker: not sum(), which may compensate
            total += item["value"]
        return {"processed": len(items), "sum": total}
    if method == "processMatrix":
        matrix = params["matrix"]
        total = 0.0
        for row in matrix:
            for value in row:
                total += value
        return {"sum": total, "avg": total / (len(matrix) * len(matrix[0]))}
    raise ValueError(f"not a seed method: {method}")


@dataclass(frozen=True)
class WireCost:
    """One seed payload in one encoding: framed bytes, and median seconds per encode/decode.

    The times are ``None`` for the raw socket, which sends prebuilt bytes. ``encode`` and
    ``decode`` add the request's and the response's: the codec work of one round trip when both
    ends use this codec in Python.
    """

    encoding: str
    request_bytes: int
    response_bytes: int
    request_encode: float | None = None
    request_decode: float | None = None
    response_encode: float | None = None
    response_decode: float | None = None
    samples: int = 0

    @property
    def wire_bytes(self) -> int:
        return self.request_bytes + self.response_bytes

    @property
    def encode(self) -> float | None:
        if self.request_encode is None or self.response_encode is None:
            return None
        return self.request_encode + self.response_encode

    @property
    def decode(self) -> float | None:
        if self.request_decode is None or self.response_decode is None:
            return None
        return self.request_decode + self.response_decode

    def as_dict(self) -> dict[str, Any]:
        def micros(value: float | None) -> float | None:
            return None if value is None else round(value * 1e6, 2)

        return {
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "wire_bytes": self.wire_bytes,
            "request_encode_us": micros(self.request_encode),
            "request_decode_us": micros(self.request_decode),
            "response_encode_us": micros(self.response_encode),
            "response_decode_us": micros(self.response_decode),
            "encode_us": micros(self.encode),
            "decode_us": micros(self.decode),
            "samples_per_figure": self.samples,
        }


def measure_wire_costs(
    payloads: tuple[SeedPayload, ...], budget: Budget, progress: Callable[[str], None]
) -> dict[str, dict[str, WireCost]]:
    """Every seed payload in every encoding: {payload key: {encoding: WireCost}}."""
    # The four figures of one payload in one encoding share one cell's budget; a median needs
    # fewer samples than a p99.
    share = Budget(budget.seconds / 4, budget.min_ops, min(budget.min_samples, 50), warm_up=False)
    costs: dict[str, dict[str, WireCost]] = {}
    for seed in payloads:
        progress(f"seed payloads: encoding {seed.label}")
        costs[seed.key] = {
            "raw": WireCost("raw", 4 + seed.packed_request, 4 + seed.packed_response),
            "pickle": _pickle_cost(seed, budget.warmup(), share),
            "control": _channel_cost(
                seed, "control", JsonCodec(), LineDelimitedFraming(), budget.warmup(), share
            ),
            "data": _channel_cost(
                seed, "data", MessagePackCodec(), LengthPrefixedFraming(), budget.warmup(), share
            ),
        }
    return costs


def median_costs(runs: list[dict[str, dict[str, WireCost]]]) -> dict[str, dict[str, WireCost]]:
    """Several rounds of :func:`measure_wire_costs` as one: each time the median of the rounds."""
    combined: dict[str, dict[str, WireCost]] = {}
    for key, forms in runs[0].items():
        combined[key] = {}
        for encoding, first in forms.items():
            costs = [run[key][encoding] for run in runs]
            times = {
                name: None
                if getattr(first, name) is None
                else statistics.median(getattr(cost, name) for cost in costs)
                for name in (
                    "request_encode",
                    "request_decode",
                    "response_encode",
                    "response_decode",
                )
            }
            combined[key][encoding] = WireCost(
                encoding,
                first.request_bytes,
                first.response_bytes,
                **times,
                samples=sum(cost.samples for cost in costs),
            )
    return combined


def _channel_cost(
    seed: SeedPayload, encoding: str, codec: Codec, framing: Framing, warmup: Budget, share: Budget
) -> WireCost:
    protocol = JsonRpcProtocol()
    decoder = framing.decoder()

    def encode_request() -> list[Any]:
        return framing.encode_parts(
            codec.encode(protocol.request(seed.method, seed.params, id=_REQUEST_ID))
        )

    def encode_response() -> list[Any]:
        return framing.encode_parts(codec.encode(protocol.response(_REQUEST_ID, seed.expected)))

    request = b"".join(encode_request())
    response = b"".join(encode_response())

    def decoding(frame: bytes) -> Callable[[], object]:
        def decode() -> object:
            decoder.feed(frame)
            payload = decoder.next_frame()
            if payload is None:
                raise RuntimeError(f"{encoding}: a whole frame was fed, no frame came out")
            return JsonRpcProtocol.parse(codec.decode(payload))

        return decode

    decoded = decoding(request)()
    if getattr(decoded, "params", None) != seed.params:
        raise RuntimeError(f"{encoding}: {seed.label} does not survive its own codec")
    return _timed(
        encoding,
        len(request),
        len(response),
        encode_request,
        decoding(request),
        encode_response,
        decoding(response),
        warmup,
        share,
    )


def _pickle_cost(seed: SeedPayload, warmup: Budget, share: Budget) -> WireCost:
    # As multiprocessing.Connection.send/recv: ForkingPickler, and a 4-byte length header.
    def dumps(value: Any) -> Callable[[], object]:
        def encode() -> object:
            body = ForkingPickler.dumps(value)
            return struct.pack("!i", len(body)), body

        return encode

    def loads(body: Any) -> Callable[[], object]:
        return lambda: ForkingPickler.loads(body)

    request = ForkingPickler.dumps((seed.method, seed.params))
    response = ForkingPickler.dumps(seed.expected)
    return _timed(
        "pickle",
        4 + len(request),
        4 + len(response),
        dumps((seed.method, seed.params)),
        loads(request),
        dumps(seed.expected),
        loads(response),
        warmup,
        share,
    )


def _timed(
    encoding: str,
    request_bytes: int,
    response_bytes: int,
    request_encode: Callable[[], object],
    request_decode: Callable[[], object],
    response_encode: Callable[[], object],
    response_decode: Callable[[], object],
    warmup: Budget,
    share: Budget,
) -> WireCost:
    medians: list[float] = []
    samples = 0
    for call in (request_encode, request_decode, response_encode, response_decode):
        _median_seconds(call, warmup)
        median, count = _median_seconds(call, share)
        medians.append(median)
        samples = count if not samples else min(samples, count)
    return WireCost(
        encoding,
        request_bytes,
        response_bytes,
        request_encode=medians[0],
        request_decode=medians[1],
        response_encode=medians[2],
        response_decode=medians[3],
        samples=samples,
    )


def _median_seconds(call: Callable[[], object], budget: Budget) -> tuple[float, int]:
    """Time each of a run of calls; return the median and the number of samples."""
    if budget.is_empty:
        return 0.0, 0
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + budget.seconds
    while len(samples) < budget.min_samples or clock() < deadline:
        start = clock()
        call()
        samples.append(clock() - start)
    return statistics.median(samples), len(samples)
