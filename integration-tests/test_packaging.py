"""The packages a user installs: the wheel and sdist, the npm tarball, the Go module.

Each is built as a user gets it and used from a temporary directory outside the repository:

- Python: wheel and sdist built from ``python/`` (``python -m build``: the wheel from the sdist),
  the wheel installed into a fresh virtualenv, the README's parent and worker run with it, and
  the sdist's own tests run from the unpacked sdist;
- Node: ``npm pack`` of a fresh clone (no ``dist/``: the ``prepare`` script builds it), the
  tarball installed offline into a new project, a TypeScript worker compiled under ``strict``
  against it and run under the Python parent; ``require()`` gets a clear error;
- Go: a new module that reaches the checkout through a ``replace`` directive, as
  ``workers-go/README.md`` says, built and run under the Python parent.

Nothing here uses the network: the Python dependencies come from this virtualenv, the Node build
tools from ``workers-node/node_modules``, the Go ones from the module cache (``GOPROXY`` as set).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

NODE_SDK = ROOT / "workers-node"
TSC = NODE_SDK / "node_modules" / "typescript" / "bin" / "tsc"
TIMEOUT = 120

# A parent that starts ``argv[2:]`` with a data channel and asks once on each channel.
PARENT = """\
import sys

import anyio
from aspect_ipc import DataChannelOptions, ProcessManager


async def main() -> None:
    async with ProcessManager(namespace=sys.argv[1]) as manager:
        handle = await manager.spawn("worker-1", executable=sys.argv[2], args=sys.argv[3:],
                                     data_channel=DataChannelOptions(enabled=True))
        print(await handle.request("getStatus"))
        print(await handle.request_via_data("sum", {"values": [1, 2, 3.5]}))


anyio.run(main)
"""
PARENT_OUTPUT = "{'status': 'running'}\n6.5\n"

# The same two methods, in TypeScript and in Go.
NODE_WORKER = """\
import { RemoteError, Worker, type RequestContext } from "@aspect-ipc/worker";

const worker = new Worker();
worker.control.onRequest("getStatus", () => ({ status: "running" }));
worker.data.onRequest("sum", (params: unknown, context: RequestContext) => {
  const values = (params as { values?: unknown }).values;
  if (!Array.isArray(values)) throw new RemoteError(-32602, `${context.method}: values must be an array`);
  return values.reduce((total: number, value: number) => total + value, 0);
});
await worker.start();
"""
GO_WORKER = """\
package main

import (
	"context"
	"os"

	aspectipc "github.com/aspect-ipc/aspect-ipc/workers-go"
)

func main() {
	err := aspectipc.Serve(context.Background(), aspectipc.Config{
		Control: aspectipc.HandlerTable{"getStatus": func(context.Context, aspectipc.Params) (any, error) {
			return map[string]any{"status": "running"}, nil
		}},
		Data: aspectipc.HandlerTable{"sum": func(_ context.Context, p aspectipc.Params) (any, error) {
			var args struct {
				Values []float64 `json:"values"`
			}
			if err := p.Decode(&args); err != nil {
				return nil, err
			}
			total := 0.0
			for _, v := range args.Values {
				total += v
			}
			return total, nil
		}},
	})
	os.Exit(aspectipc.ExitCode(err))
}
"""


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs ``command``; fails the test with its output when it fails. Returns its stdout."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} (in {cwd}) exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def code_blocks(readme: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", readme.read_text(), re.DOTALL)


def outside_repository(path: Path) -> Path:
    assert not path.resolve().is_relative_to(ROOT), f"{path} is inside the repository"
    return path


def test_every_package_carries_the_license() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith(
        "MIT License\n\nCopyright (c) 2026 the aspect-ipc authors\n"
    )
    for package in ("python", "workers-node", "workers-go"):
        copy = ROOT / package / "LICENSE"
        assert copy.read_text() == license_text, (
            f"{copy} differs from LICENSE: copy it again"
        )


# ---- Python ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def python_dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel (built from the sdist), checked by twine."""
    out = outside_repository(tmp_path_factory.mktemp("python-dist"))
    # --no-isolation: the backend (hatchling) is in this virtualenv, so no download.
    build = [
        sys.executable,
        "-m",
        "build",
        "--no-isolation",
        "--outdir",
        str(out),
        "python",
    ]
    run(build, ROOT)
    files = {path.suffix: path for path in out.iterdir()}
    assert sorted(files) == [".gz", ".whl"], f"build made {sorted(out.iterdir())}"
    run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files.values())],
        out,
    )
    return {"sdist": files[".gz"], "wheel": files[".whl"]}


@pytest.fixture(scope="module")
def wheel_python(
    python_dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The interpreter of a fresh virtualenv (outside the repository) with the wheel installed."""
    venv = outside_repository(tmp_path_factory.mktemp("venv"))
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--disable-pip-version-check", "--no-index", "--no-deps", str(python_dist["wheel"])],
        venv,
    )  # fmt: skip
    # The dependencies (and pytest, for the sdist's tests) come from this virtualenv, appended
    # after the fresh one's site-packages: offline, and this checkout's editable install is not
    # seen (a path added by a .pth file does not have its own .pth files read).
    fresh = sysconfig.get_path(
        "purelib", vars={"base": str(venv), "platbase": str(venv)}
    )
    (Path(fresh) / "_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = run(
        [str(python), "-c", "import aspect_ipc; print(aspect_ipc.__file__)"], venv
    )
    assert Path(installed.strip()).is_relative_to(venv), (
        f"aspect_ipc imported from {installed}"
    )
    return python


def bare_environment(home: Path) -> dict[str, str]:
    """No virtualenv on PATH, no PYTHONPATH: only what the interpreter itself finds."""
    return {"PATH": os.defpath, "HOME": str(home), "LANG": "C.UTF-8"}


def test_wheel_metadata_and_contents(python_dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(python_dist["wheel"]) as wheel:
        names = wheel.namelist()
        info = next(
            name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA")
        )
        metadata = wheel.read(f"{info}/METADATA").decode()
        license_copy = wheel.read(f"{info}/licenses/LICENSE").decode()
    assert license_copy == (ROOT / "LICENSE").read_text()
    assert "aspect_ipc/py.typed" in names
    assert not [name for name in names if name.startswith(("tests/", "spec/"))]
    for line in (
        "License-Expression: MIT",
        "License-File: LICENSE",
        "Author: the aspect-ipc authors",
        "Classifier: Typing :: Typed",
        "Project-URL: Repository, https://github.com/aspect-ipc/aspect-ipc",
        "Project-URL: Issues, https://github.com/aspect-ipc/aspect-ipc/issues",
        "Requires-Python: >=3.11",
    ):
        assert line in metadata.splitlines(), (
            f"{line!r} missing from the wheel's METADATA"
        )
    assert re.search(r"^Keywords: .*json-rpc", metadata, re.MULTILINE)
    urls = re.findall(r"^Project-URL: [^,]+, (\S+)$", metadata, re.MULTILINE)
    assert urls and all(
        url.startswith("https://github.com/aspect-ipc/aspect-ipc") for url in urls
    )


def test_sdist_carries_what_its_tests_read(python_dist: dict[str, Path]) -> None:
    with tarfile.open(python_dist["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    vectors = {
        f"spec/vectors/{path.name}" for path in (ROOT / "spec/vectors").iterdir()
    }
    expected = {
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "integration-tests/workers/python/worker.py",
    }
    assert vectors | expected <= names
    assert "tests/test_vectors.py" in names and "src/aspect_ipc/py.typed" in names


@pytest.mark.parametrize("pure", [False, True], ids=["compiled core", "pure Python"])
def test_wheel_runs_the_readme_example_outside_the_repository(
    wheel_python: Path, tmp_path: Path, namespace: str, pure: bool
) -> None:
    """The README's worker.py and parent.py, as they are, but for a namespace of this test's own;
    with the compiled core this checkout built, and without it (``ASPECT_IPC_PURE_PYTHON=1``)."""
    for block in code_blocks(ROOT / "python/README.md", "python"):
        name = block.splitlines()[0].removeprefix("# ")
        (tmp_path / name).write_text(
            block.replace('namespace="hello"', f'namespace="{namespace}"')
        )
    assert namespace in (tmp_path / "parent.py").read_text(), (
        "the README's parent changed"
    )
    environment = bare_environment(tmp_path)
    if pure:
        environment["ASPECT_IPC_PURE_PYTHON"] = "1"
    version = run(
        [str(wheel_python), "-m", "aspect_ipc", "--version"], tmp_path, environment
    )
    assert ("(pure Python)" in version) is pure, version
    output = run([str(wheel_python), "parent.py"], tmp_path, environment)
    assert output == PARENT_OUTPUT


def test_sdist_tests_pass_from_the_unpacked_sdist(
    python_dist: dict[str, Path], wheel_python: Path, tmp_path: Path
) -> None:
    """The shared vectors and the worker SDK tests (which start the Python test worker)."""
    with tarfile.open(python_dist["sdist"]) as sdist:
        sdist.extractall(tmp_path, filter="data")
    (unpacked,) = tmp_path.iterdir()
    command = [str(wheel_python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    output = run(
        [*command, "tests/test_vectors.py", "tests/test_worker_sdk.py"],
        unpacked,
        bare_environment(tmp_path),
    )
    assert re.search(r"\b\d+ passed\b", output), output


# ---- Node -----------------------------------------------------------------------------------------
def npm_environment(home: Path) -> dict[str, str]:
    """npm offline, with a cache of its own (parallel runs share nothing), quiet."""
    return {
        **os.environ,
        "npm_config_cache": str(home / "npm-cache"),
        "npm_config_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }


@pytest.fixture(scope="module")
def npm_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npm pack`` of a fresh clone of workers-node: its files under git, no dist/."""
    home = outside_repository(tmp_path_factory.mktemp("npm"))
    clone = home / "workers-node"
    clone.mkdir()
    for name in ("package.json", "package-lock.json", "README.md", "LICENSE", "tsconfig.json",
                 "tsconfig.base.json"):  # fmt: skip
        shutil.copy2(NODE_SDK / name, clone / name)
    for name in ("src", "scripts"):
        shutil.copytree(NODE_SDK / name, clone / name)
    # What `prepare` installs in a fresh clone without its node_modules, already here: offline.
    (clone / "node_modules").symlink_to(NODE_SDK / "node_modules")
    packed = run(["npm", "pack", "--json", "--pack-destination", str(home)], clone,
                 npm_environment(home))  # fmt: skip
    (summary,) = json.loads(packed)
    return home / summary["filename"]


@pytest.fixture(scope="module")
def node_project(npm_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new ES module project with the tarball installed and a worker compiled under strict."""
    project = outside_repository(tmp_path_factory.mktemp("node-project"))
    (project / "package.json").write_text(
        '{"name": "consumer", "private": true, "type": "module"}'
    )
    run(
        ["npm", "install", "--no-save", str(npm_tarball)],
        project,
        npm_environment(project),
    )
    (project / "worker.ts").write_text(NODE_WORKER)
    # The README's examples must compile as well.
    for index, block in enumerate(code_blocks(NODE_SDK / "README.md", "ts")):
        (project / f"readme-{index}.ts").write_text(block)
    tsconfig = {
        "compilerOptions": {
            "strict": True,
            "skipLibCheck": False,
            "target": "ES2022",
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            # @types/node of the SDK's devDependencies: a user has their own.
            "types": ["node"],
            "typeRoots": [str(NODE_SDK / "node_modules" / "@types")],
            "outDir": "build",
        },
        "include": ["*.ts"],
    }
    (project / "tsconfig.json").write_text(json.dumps(tsconfig))
    run(["node", str(TSC), "-p", "tsconfig.json"], project)
    return project


def test_npm_tarball_contents(npm_tarball: Path, tmp_path: Path) -> None:
    with tarfile.open(npm_tarball) as tarball:
        tarball.extractall(tmp_path, filter="data")
    package = tmp_path / "package"
    files = {
        str(path.relative_to(package)) for path in package.rglob("*") if path.is_file()
    }
    for name in ("LICENSE", "README.md", "package.json", "dist/bundle.js", "dist/bundle.js.map",
                 "dist/require.cjs", "dist/index.d.ts", "dist/worker/worker.d.ts"):  # fmt: skip
        assert name in files, f"{name} missing from the npm tarball"
    assert (package / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    # The one entry point: the modules tsc wrote are bundled, and the tests stay out.
    assert {name for name in files if name.endswith(".js")} == {"dist/bundle.js"}
    assert not [name for name in files if name.startswith("dist/test")]
    # Every source map points at files the package ships (the bundle's at src/).
    bundle_map = json.loads((package / "dist/bundle.js.map").read_text())
    assert "../src/worker/worker.ts" in bundle_map["sources"]
    maps = [(package / "dist", bundle_map)]
    for path in package.glob("dist/**/*.d.ts.map"):
        maps.append((path.parent, json.loads(path.read_text())))
    assert len(maps) > 10
    for base, source_map in maps:
        for source in source_map["sources"]:
            assert (base / source).resolve().is_file(), (
                f"a source map points at {source}: absent"
            )


def test_npm_tarball_worker_runs_under_the_python_parent(
    node_project: Path, namespace: str
) -> None:
    (node_project / "parent.py").write_text(PARENT)
    worker = ["node", "build/worker.js"]
    output = run([sys.executable, "parent.py", namespace, *worker], node_project)
    assert output == PARENT_OUTPUT


def test_npm_package_require_says_it_is_esm_only(node_project: Path) -> None:
    result = subprocess.run(
        ["node", "-e", 'require("@aspect-ipc/worker")'],
        cwd=node_project, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "aspect-ipc is ESM only: use import" in result.stderr
    assert "ERR_PACKAGE_PATH_NOT_EXPORTED" not in result.stderr


# ---- Go -------------------------------------------------------------------------------------------
def test_go_module_builds_with_a_replace_and_runs_under_the_python_parent(
    tmp_path: Path, namespace: str
) -> None:
    """The README's recipe: go mod edit -replace, go mod tidy; its worker example compiles too."""
    go_module = outside_repository(tmp_path)
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    (go_module / "main.go").write_text(GO_WORKER)
    readme_worker = next(
        block
        for block in code_blocks(ROOT / "workers-go/README.md", "go")
        if "func main" in block
    )
    (go_module / "readme").mkdir()
    (go_module / "readme" / "main.go").write_text(readme_worker)
    run(["go", "mod", "init", "example.com/consumer"], go_module, env)
    replace = f"github.com/aspect-ipc/aspect-ipc/workers-go={ROOT / 'workers-go'}"
    run(["go", "mod", "edit", "-replace", replace], go_module, env)
    run(["go", "mod", "tidy"], go_module, env)
    assert (
        "require github.com/aspect-ipc/aspect-ipc/workers-go v0.0.0-"
        in (go_module / "go.mod").read_text()
    )
    run(["go", "build", "./..."], go_module, env)
    run(["go", "build", "-o", "worker", "."], go_module, env)
    (go_module / "parent.py").write_text(PARENT)
    output = run([sys.executable, "parent.py", namespace, "./worker"], go_module)
    assert output == PARENT_OUTPUT
