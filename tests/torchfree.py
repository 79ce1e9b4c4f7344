"""Run the CLI in a fresh interpreter and report whether it imported PyTorch."""

from __future__ import annotations

import subprocess
import sys


def cli_imports_torch(*args: str) -> bool:
    code = (
        "import sys\n"
        "from srgan.cli.main import run\n"
        "try:\n"
        f"    run({list(args)!r})\n"
        "except SystemExit as exit_:\n"
        "    assert not exit_.code, exit_.code\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "True"
