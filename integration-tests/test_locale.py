"""A parent whose locale is not UTF-8 still gives every worker its id, namespace and data path in
UTF-8 (spec 5.1), and gets its stderr in UTF-8. Under a Latin-1 or ASCII locale, Python encodes the environment by the locale:
a Go worker then failed `$/hello` (the id it echoed was not UTF-8), a Node worker answered as
another id ('w\\ufffdrker'), and an id the locale cannot encode ('✓' in ASCII) made spawn() fail
with a codec error that named the executable. A data path whose bytes are not UTF-8 cannot be
carried at all ($/ready names it in JSON): the parent refuses it, naming it.

The parent runs in its own process with LC_ALL=C and UTF-8 mode off, which gives Python the
ASCII file system encoding; the Python worker inherits that locale, so its side is tested too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PARENT = r"""
import json, os, sys
import anyio
from aspect_ipc import DataChannelOptions, ProcessManager

command, socket_dir = json.loads(sys.argv[1]), sys.argv[2]


async def main() -> None:
    out = {"encoding": sys.getfilesystemencoding()}
    async with ProcessManager(namespace="nämespace", socket_dir=socket_dir) as manager:
        lines = []
        manager.on("output", lambda event: lines.append(event.line))
        handle = await manager.spawn(
            "wörker-✓", executable=command[0], args=command[1:],
            data_channel=DataChannelOptions(enabled=True),
        )
        out["echo"] = await handle.request_via_data("echo", ["é✓"])
        out["control"] = await handle.request("echo", ["é✓"])
        await handle.request("stderr", {"text": "stderr é✓"})
        await handle.request("print", {"text": "print é✓"})
        with anyio.move_on_after(10):  # stderr is not ordered with control: wait for both
            while len([line for line in lines if line.startswith(("stderr", "print"))]) < 2:
                await anyio.sleep(0.01)
        out["stderr"] = [line for line in lines if line.startswith(("stderr", "print"))]
        with open(f"/proc/{handle.pid}/environ", "rb") as f:
            env = dict(i.split(b"=", 1) for i in f.read().split(b"\0") if b"=" in i)
        for name in ("WORKER_ID", "NAMESPACE", "DATA_PATH"):
            out[name] = env[b"ASPECT_IPC_" + name.encode()].decode("utf-8")
    out["sockets"] = len(os.listdir(os.fsencode(socket_dir)))
    async with ProcessManager(namespace="plain", socket_dir=socket_dir) as manager:
        try:  # a variable of the user's own is encoded by the locale, as Python always does
            await manager.spawn("w", executable=command[0], args=command[1:],
                                env={"GREETING": "✓"})
        except ValueError as exc:
            out["env_refused"] = str(exc)
    for directory in (b"/tmp/latin-\xe9", "/tmp/ascii-\u00e9"):
        try:
            ProcessManager(socket_dir=os.fsdecode(directory) if isinstance(directory, bytes)
                           else directory)
        except ValueError as exc:
            out.setdefault("refused", []).append(str(exc))
    print(json.dumps(out))


anyio.run(main)
"""


def test_names_reach_every_worker_in_utf8_whatever_the_locale(
    worker: dict[str, object], tmp_path: Path
) -> None:
    socket_dir = os.fsencode(tmp_path) + "/sockets-é".encode()
    os.mkdir(socket_dir)
    script = tmp_path / "parent.py"
    script.write_text(PARENT, encoding="utf-8")
    command = [worker["executable"], *worker["args"]]  # type: ignore[misc]
    env = {
        "PATH": os.environ["PATH"],
        "LC_ALL": "C",
        "LANG": "C",
        "PYTHONUTF8": "0",
        "PYTHONCOERCECLOCALE": "0",
    }
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(command), os.fsdecode(socket_dir)],
        check=False,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-3000:]
    out = json.loads(done.stdout)
    assert out["encoding"] == "ascii"  # the test's premise: a locale that is not UTF-8
    assert out["echo"] == out["control"] == ["é✓"]
    # The worker's stderr is UTF-8 whatever its locale (spec, "Channels"): the Python SDK wrote
    # it in ASCII, 'stderr \\xe9\\u2713'.
    assert sorted(out["stderr"]) == ["print é✓", "stderr é✓"], out["stderr"]
    assert out["WORKER_ID"] == "wörker-✓"
    assert out["NAMESPACE"] == "nämespace"
    assert out["DATA_PATH"].startswith(os.fsdecode(tmp_path) + "/sockets-é/")
    assert out["sockets"] == 0  # the worker's socket was removed at the end
    assert "'GREETING'" in out["env_refused"], out["env_refused"]
    assert "PYTHONUTF8=1" in out["env_refused"], out["env_refused"]
    latin, unencodable = out["refused"]
    for message, shown in [(latin, r"latin-\udce9"), (unencodable, "ascii-é")]:
        assert shown in message and "socket_dir" in message, message
        assert "UTF-8" in message and "PYTHONUTF8=1" in message, message
