"""Every complete program in the documentation runs against real workers and prints what it shows.

The site's pages are the Markdown files under ``docs/`` (symlinks followed: the protocol, the Node
and Go SDK READMEs and the benchmarks' README are symlinked there). A complete program is marked
by a title on its fence, the name of its file: ```` ```python title="parent.py" ````. The titled
files of one page are written into one directory, the Node (``.ts``) and Go (``.go``) ones are
built there, and every Python file that runs an event loop (``anyio.run(``) is run there; its
standard output must be exactly the page's ```` ```text title="output of parent.py" ```` block.

The SDK READMEs cannot carry titles of their own making, so an untitled block that is a whole
Go, Node or Python worker (``package main``; ``new Worker(`` ... ``.start()``; ``Worker(`` ...
``worker.run()``) is built and spawned as a worker too: it must complete the handshake, answer ``$/ping`` on both channels and stop cleanly.
An untitled Python block with an entry point (``if __name__ == "__main__":``) fails the suite:
mark it, or it would go unrun.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aspect_ipc import DataChannelOptions, ProcessManager

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NODE_SDK = ROOT / "workers-node"
GO_SDK = ROOT / "workers-go"
# The programs use the fixed namespaces the docs show (docs-...): two runs of this file at once
# would share socket paths, so the programs of one run take turns with those of any other.
LOCK = Path("/tmp/aspect-ipc-docs-examples.lock")
RUN_TIMEOUT = 120  # a hang guard for one program, not a timing assertion

FENCE = re.compile(r"^(`{3,})(.*)$")
TITLE = re.compile(r'title="([^"]+)"')


@dataclass
class Block:
    page: str
    line: int
    language: str
    title: str | None
    text: str


@dataclass
class Page:
    name: str
    files: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


def blocks(path: Path, name: str) -> Iterator[Block]:
    """The fenced code blocks of one Markdown page."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index].rstrip("\n"))
        index += 1
        if opening is None:
            continue
        fence, info = opening.groups()
        start, body = index, []
        while index < len(lines) and lines[index].rstrip() != fence:
            body.append(lines[index])
            index += 1
        index += 1
        title = TITLE.search(info)
        language = info.strip().split(" ")[0] if info.strip() else ""
        yield Block(
            name, start, language, title.group(1) if title else None, "".join(body)
        )


def pages() -> list[tuple[Path, str]]:
    found = []
    for directory, _, names in os.walk(DOCS, followlinks=True):
        for file_name in names:
            if file_name.endswith(".md"):
                path = Path(directory, file_name)
                found.append((path, str(path.relative_to(DOCS))))
    return sorted(found, key=lambda item: item[1])


def is_whole_worker(block: Block) -> bool:
    if block.language == "go":
        return block.text.lstrip().startswith("package main")
    if block.language in ("ts", "typescript"):
        return "new Worker(" in block.text and ".start()" in block.text
    if block.language == "python":
        return "Worker(" in block.text and "worker.run()" in block.text
    return False


def collect() -> tuple[list[Page], list[Block], list[Block]]:
    """Titled programs by page, untitled whole workers, and unmarked Python entry points."""
    titled: list[Page] = []
    workers: list[Block] = []
    unmarked: list[Block] = []
    for path, name in pages():
        page = Page(name)
        for block in blocks(path, name):
            if block.title is not None and block.title.startswith("output of "):
                page.outputs[block.title.removeprefix("output of ")] = block.text
            elif block.title is not None:
                page.files[block.title] = block.text
            elif is_whole_worker(block):
                workers.append(block)
            elif (
                block.language == "python"
                and 'if __name__ == "__main__":' in block.text
            ):
                unmarked.append(block)
        if page.files:
            titled.append(page)
    return titled, workers, unmarked


TITLED, WORKERS, UNMARKED = collect()


@pytest.fixture
def turn() -> Iterator[None]:
    """Holds the lock that serializes the docs' programs across concurrent runs."""
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def build_node(directory: Path, sources: list[str]) -> None:
    """Compile ``sources`` (TypeScript) to ``.js`` beside them, importing @aspect-ipc/worker."""
    if not (NODE_SDK / "dist/index.d.ts").exists():
        pytest.fail(
            "the Node SDK is not built (workers-node/dist): run make build-node"
        )
    (directory / "package.json").write_text('{"private": true, "type": "module"}\n')
    scope = directory / "node_modules/@aspect-ipc"
    scope.mkdir(parents=True)
    (scope / "worker").symlink_to(NODE_SDK)
    config = {
        "extends": str(NODE_SDK / "tsconfig.base.json"),
        "compilerOptions": {
            "rootDir": ".",
            "outDir": ".",
            "typeRoots": [str(NODE_SDK / "node_modules/@types")],
        },
        "files": sources,
    }
    (directory / "tsconfig.json").write_text(json.dumps(config))
    result = run([str(NODE_SDK / "node_modules/.bin/tsc"), "-p", "."], directory)
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}{result.stderr}"


def build_go(directory: Path, sources: list[str]) -> None:
    """Build each of ``sources`` to a binary named after it, against the Go SDK of this tree."""
    (directory / "go.mod").write_text(
        "module docs.example/program\n\ngo 1.22\n\n"
        "require github.com/aspect-ipc/aspect-ipc/workers-go v0.0.0\n\n"
        f"replace github.com/aspect-ipc/aspect-ipc/workers-go => {GO_SDK}\n"
    )
    if (GO_SDK / "go.sum").exists():  # the SDK's own test dependencies, if any
        shutil.copy(GO_SDK / "go.sum", directory / "go.sum")
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    for source in sources:
        result = subprocess.run(
            ["go", "build", "-o", source.removesuffix(".go"), source],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            env=env,
            check=False,
        )
        assert result.returncode == 0, f"go build {source} failed:\n{result.stderr}"


def build(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    typescript = [name for name in files if name.endswith(".ts")]
    if typescript:
        build_node(directory, typescript)
    go = [name for name in files if name.endswith(".go")]
    if go:
        build_go(directory, go)


def test_the_docs_have_programs_and_mark_them() -> None:
    assert TITLED, "no titled program found under docs/"
    assert not UNMARKED, (
        "complete Python programs without a title (they would not be run): "
        + (", ".join(f"{block.page}:{block.line}" for block in UNMARKED))
    )
    for page in TITLED:
        programs = "".join(t for n, t in page.files.items() if "anyio.run(" in t)
        for name in page.files:
            stem = name.rsplit(".", 1)[0]
            assert "anyio.run(" in page.files[name] or stem in programs, (
                f"{page.name}: {name} is neither a program nor started by one"
            )
        for name in page.outputs:
            assert name in page.files, (
                f"{page.name}: 'output of {name}' names no program"
            )


@pytest.mark.parametrize("page", TITLED, ids=[page.name for page in TITLED])
def test_programs_of_a_page_print_what_the_page_shows(
    page: Page, tmp_path: Path, turn: None
) -> None:
    build(tmp_path, page.files)
    programs = [
        name
        for name, text in page.files.items()
        if name.endswith(".py") and "anyio.run(" in text
    ]
    assert programs, f"{page.name}: titled files, but no program that runs them"
    for name in programs:
        assert name in page.outputs, (
            f"{page.name}: {name} has no 'output of {name}' block"
        )
        result = run([sys.executable, name], tmp_path)
        assert result.returncode == 0, f"{page.name}: {name} failed:\n{result.stderr}"
        assert result.stdout == page.outputs[name], (
            f"{page.name}: {name} printed something else than the page shows; stderr:\n"
            + result.stderr
        )


@pytest.mark.anyio
@pytest.mark.parametrize("block", WORKERS, ids=[f"{b.page}:{b.line}" for b in WORKERS])
async def test_whole_workers_start_answer_and_stop(
    block: Block, tmp_path: Path, namespace: str
) -> None:
    extension, command = {
        "go": (".go", ["./worker"]),
        "python": (".py", [sys.executable, "worker.py"]),
    }.get(block.language, (".ts", ["node", "worker.js"]))
    build(tmp_path, {f"worker{extension}": block.text})
    async with ProcessManager(namespace=namespace) as manager:
        handle = await manager.spawn(
            "docs",
            executable=command[0],
            args=command[1:],
            cwd=str(tmp_path),
            data_channel=DataChannelOptions(enabled=True),
        )
        assert await handle.request("$/ping") == {}
        assert await handle.request_via_data("$/ping") == {}
        await handle.stop()
    assert handle.exit_code == 0
