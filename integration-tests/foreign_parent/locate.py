"""Where the three test workers are, as integration-tests/WORKERS.md says (after `make build`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["LANGUAGES", "ROOT", "worker_command"]

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("go", "node", "python")


def worker_command(language: str) -> list[str]:
    """The command that starts ``language``'s test worker; AssertionError if it is not built."""
    venv_python = ROOT / ".venv/bin/python"
    commands = {
        "python": [
            str(venv_python if venv_python.exists() else Path(sys.executable)),
            str(ROOT / "integration-tests/workers/python/worker.py"),
        ],
        "node": [
            shutil.which("node") or "node",
            str(ROOT / "integration-tests/workers/node/build/worker.js"),
        ],
        "go": [str(ROOT / ".build/go/test-worker")],
    }
    command = commands[language]
    if not Path(command[-1]).exists():
        raise AssertionError(
            f"the {language} test worker is not built ({command[-1]}): make build"
        )
    return command
