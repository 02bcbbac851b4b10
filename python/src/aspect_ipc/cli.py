"""The ``aspect-ipc`` command: call one method on a worker, or check that a worker starts.

``aspect-ipc call`` and ``aspect-ipc ping`` spawn the worker command that follows ``--`` under a
:class:`ProcessManager`, do one thing, stop the worker and exit with a code that says how it
went (:data:`EXIT_CODES`). The arguments are parsed here; :mod:`._cli_run` does the work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from ._calls import check_name
from ._cli_run import Call, Common, Ping, decode_binary, run
from ._compiled import compiled_core
from ._option_checks import checked_socket_dir
from .constants import RESERVED_PREFIX

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {
    0: "success",
    1: "the worker answered with an error (a JSON-RPC error object)",
    2: "usage error: bad options, method or params",
    3: "the worker could not be started (not found; exited, timed out or refused\n"
    "       during the start-up handshake)",
    4: "no answer within --timeout",
    5: "the worker crashed or closed its channel before answering, or its answer broke\n"
    "       the protocol",
    6: "the result could not be written: stdout closed or failing (a reader that went\n"
    "       away, as in '| head', is not an error)",
    130: "interrupted by Ctrl-C (SIGINT); the worker was stopped",
    143: "terminated (SIGTERM); the worker was stopped",
}

_EPILOG_COMMON = """\
The worker command:
  Everything after the first '--' is the worker: an executable (looked up on PATH)
  and its arguments. The worker must speak the aspect-ipc protocol (an SDK worker).

exit codes:
{codes}
"""

_CALL_RULE = """\
how the arguments after '--' are split:
  1. With --params, the last argument is the method; everything before it is the
     worker command.
  2. Otherwise, if the last argument starts with '{' or '[' (JSON-RPC params are
     an object or an array), it is the json-params and must be valid JSON; the
     argument before it is the method.
  3. Otherwise the last argument is the method and the call has no params.
  The worker command is what remains, and must not be empty.

params and result:
  An object {"$bin": "<hex>"} (that one key only) in the params is sent as
  binary (bytes); binary in the result is printed the same way. Binary travels
  on the data channel only (--data): JSON on the control channel has no bytes.

examples:
  aspect-ipc call -- python worker.py add '{"a": 1, "b": 2}'
  aspect-ipc call --data --timeout 5 -- node build/worker.js echo '[1, "two"]'
  aspect-ipc call --params '{"a": 1, "b": 2}' -- ./test-worker add
"""

_PING_TEXT = """\
ping starts the worker, waits for the start-up handshake (its $/ready, and the
data channel connected and authenticated), prints the worker's $/ready info
(protocol, sdk, sdkVersion, language, pid, dataPath) and the time from spawn to
ready, then stops it.

example:
  aspect-ipc ping -- ./test-worker
"""


def _codes() -> str:
    return "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _env_entry(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return name, value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--startup-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds from spawn to ready, at most (default: 10)",
    )
    parser.add_argument(
        "--namespace",
        help="names the data channel's socket, /tmp/<namespace>-worker.sock, and is the "
        "worker's ASPECT_IPC_NAMESPACE (default: aspect-ipc-cli-<this process's pid>)",
    )
    parser.add_argument(
        "--env",
        type=_env_entry,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an environment variable for the worker, on top of this one's (repeatable)",
    )
    parser.add_argument("--cwd", metavar="DIR", help="the worker's working directory")
    parser.add_argument(
        "--socket-dir",
        metavar="DIR",
        help="where the data channel's socket is made (default: /tmp); a directory only you "
        "can write to, or sticky like /tmp",
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The argument parser of ``aspect-ipc`` and those of its commands, by name (they parse
    what precedes ``--``)."""
    parser = argparse.ArgumentParser(
        prog="aspect-ipc",
        description="Spawn an aspect-ipc worker, talk to it once, stop it.\n"
        "'aspect-ipc <command> --help' explains each command.",
        epilog=_EPILOG_COMMON.format(codes=_codes()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    core = compiled_core()
    speed = f"compiled core {core}" if core else "pure Python"
    version = f"aspect-ipc {__version__} ({speed})"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", metavar="{call,ping}", required=True)
    call = commands.add_parser(
        "call",
        usage="aspect-ipc call [options] -- <command...> <method> [json-params]",
        help="call one method and print its JSON result",
        description="Spawn the worker, call <method> once, print the result as JSON on\n"
        "stdout, stop the worker. An error goes to stderr as 'error: ...' and the exit\n"
        "code says which kind it was.",
        epilog=_CALL_RULE + "\n" + _EPILOG_COMMON.format(codes=_codes()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument(
        "--data",
        action="store_true",
        help="call on the data channel (MessagePack over the Unix socket; the worker is "
        "spawned with it enabled) instead of the control channel (JSON over stdio)",
    )
    call.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds to wait for the answer once the worker is ready (default: 30)",
    )
    call.add_argument(
        "--params",
        metavar="JSON",
        help="the params (a JSON object or array); the last argument after '--' is then "
        "always the method",
    )
    call.add_argument("--pretty", action="store_true", help="indent the JSON result")
    _add_common(call)
    ping = commands.add_parser(
        "ping",
        usage="aspect-ipc ping [options] -- <command...>",
        help="start a worker, print its $/ready info and the spawn-to-ready time",
        description=_PING_TEXT,
        epilog=_EPILOG_COMMON.format(codes=_codes()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ping.add_argument(
        "--no-data",
        action="store_true",
        help="spawn without the data channel (for a control-only worker)",
    )
    ping.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: the $/ready info and spawnToReadyMs",
    )
    _add_common(ping)
    return parser, {"call": call, "ping": ping}


def _not_json(token: str) -> Any:
    # Python's json module reads NaN, Infinity and -Infinity, and 1e400 as infinity: none of
    # them is JSON, and other parsers of what the command prints reject them.
    raise ValueError(f"{token} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        _not_json(f"{text} (too large for a float)")
    return value


def _params(text: str, parser: argparse.ArgumentParser, source: str) -> Any:
    """Parse the params ``text``; ``source`` names where they came from in a usage error:
    ``--params`` or ``json-params`` (the last argument after ``--``)."""
    try:
        params = json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError as exc:
        parser.error(f"{source} {text!r} is not valid JSON: {exc}")
    try:
        params = decode_binary(params)
    except ValueError as exc:
        parser.error(f"{source} {text!r}: {exc}")
    if isinstance(params, bytes):  # a $bin object is one value, not params
        parser.error(
            f"{source} {text!r} is one binary value, and params are a JSON object or array "
            '(JSON-RPC 2.0): wrap it, e.g. [{"$bin": "..."}]'
        )
    if not isinstance(params, dict | list):
        parser.error(f"{source} {text!r} must be a JSON object or array (JSON-RPC 2.0 params)")
    return params


def split_call(
    rest: Sequence[str], params_option: str | None, parser: argparse.ArgumentParser
) -> tuple[list[str], str, Any]:
    """``<command...> <method> [json-params]`` -> (command, method, params), by the rule of
    ``aspect-ipc call --help``."""
    words = list(rest)
    params: Any = None
    if params_option is not None:
        params = _params(_typed_text(params_option), parser, "--params")
    elif words and words[-1].lstrip()[:1] in ("{", "["):
        params = _params(_typed_text(words.pop()), parser, "json-params")
    if len(words) < 2:
        parser.error(
            "expected '-- <command...> <method> [json-params]': "
            + ("no worker command before the method" if words else "no method")
        )
    method = _typed_text(words[-1])
    if not method:
        parser.error("the method is empty: name the worker's method after the worker command")
    if method.startswith(RESERVED_PREFIX):
        parser.error(
            f"{method!r}: methods starting with {RESERVED_PREFIX!r} are the protocol's own "
            "(PROTOCOL.md 4.3); ping checks that a worker starts"
        )
    return words[:-1], method, params


def _typed_text(argument: str) -> str:
    """An argument that is protocol text (a method, params, a namespace) as the UTF-8 typed.

    Under a locale that is not UTF-8 (LC_ALL=C with UTF-8 mode off), Python hands non-ASCII
    arguments over as lone surrogates, their bytes escaped; refused then as not Unicode, they
    are read back as the UTF-8 they are. Bytes that are not UTF-8 stay as Python read them.
    """
    try:
        return os.fsencode(argument).decode("utf-8")
    except UnicodeError:
        return argument


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aspect-ipc`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    if "--" in args_in:
        cut = args_in.index("--")
        options, rest = args_in[:cut], args_in[cut + 1 :]
    else:
        options, rest = args_in, []
    args = parser.parse_args(options)
    sub = commands[args.command]
    if not rest:
        sub.error("the worker command must follow '--'")
    if args.namespace:  # empty: the default, as --help says
        args.namespace = _typed_text(args.namespace)
        try:
            check_name("--namespace", args.namespace)
        except ValueError as exc:
            sub.error(str(exc))
    if args.socket_dir is not None:
        try:
            args.socket_dir = checked_socket_dir(args.socket_dir)
        except ValueError as exc:
            sub.error(str(exc))
    common = Common(
        namespace=args.namespace or f"aspect-ipc-cli-{os.getpid()}",
        env=dict(args.env),
        cwd=args.cwd,
        startup_timeout=args.startup_timeout,
        socket_dir=args.socket_dir,
    )
    if args.command == "call":
        command, method, params = split_call(rest, args.params, sub)
        job: Call | Ping = Call(
            common, command, method, params, args.data, args.timeout, args.pretty
        )
    else:
        job = Ping(common, rest, not args.no_data, args.json)
    return run(job)
