"""A foreign parent: speaks aspect-ipc from spec/PROTOCOL.md alone, without any project code.

It spawns a test worker (integration-tests/WORKERS.md) with the environment of section 5, reads
`$/ready`, connects to the data socket and says `$/hello`, then lets a test send anything at all,
well-formed or not, on both channels and look at exactly what comes back. Only the standard
library and `msgpack` are used, so that whatever it finds is a property of the worker, not of a
shared implementation.

Modules: `wire` (bytes of lines and frames), `mailbox` (what arrived, in order), `data` (one
data-channel connection), `process` (one spawned worker and its control channel), `channels`
(one interface over both), `locate` (where the test workers are), and for the test modules
(integration-tests/test_foreign_*.py) `support` and `fixtures` (a worker shared by a module's
cases, and the clean-up checks).
"""

from foreign_parent.data import DataConnection, hello_params
from foreign_parent.locate import LANGUAGES, worker_command
from foreign_parent.mailbox import Item, Mailbox
from foreign_parent.process import ForeignWorker, alive, exited
from foreign_parent.wire import (
    deep_line,
    deep_payload,
    frame,
    line,
    nested,
    notification,
    pack,
    raw_request,
    request,
    unpack,
)

__all__ = [
    "LANGUAGES",
    "DataConnection",
    "ForeignWorker",
    "Item",
    "Mailbox",
    "alive",
    "deep_line",
    "deep_payload",
    "exited",
    "frame",
    "hello_params",
    "line",
    "nested",
    "notification",
    "pack",
    "raw_request",
    "request",
    "unpack",
    "worker_command",
]
