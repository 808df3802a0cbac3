"""Commands run against a small tmpfs that only they see: a private mount namespace
(``unshare -m``, as root), so a test can fill a disk without touching the machine's.

The tmpfs goes when the namespace's last process exits, so every command of a scenario runs
in one namespace, one after the other (a shell script), and the tmpfs's files are copied
out at the end for the test to read.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support import tiers
from support.paths import REPO
from support.storage_fault_hook import FILLER


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


class TmpfsScenario:
    """Shell lines to run in one private mount namespace with a ``size`` tmpfs on ``mount``
    (an empty folder of the test's); what each ``yolor-ray`` command printed comes back
    under ``out``, and the tmpfs's files (but the ``.pth`` weights) in ``out/kept``."""

    def __init__(self, mount: Path, size: str, out: Path):
        self.mount, self.out = mount, out
        mount.mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        self.lines = ["set -u", f"mount -t tmpfs -o size={size} yolor-test {shlex.quote(str(mount))} || exit 97",
                      f"cd {shlex.quote(str(REPO))}"]
        self.commands: list[str] = []

    def yolor_ray(self, tag: str, *args, env: dict | None = None) -> None:
        """``yolor-ray ARGS`` with ``env`` added to this environment; its output is ``tag``'s."""
        assignments = [f"{key}={shlex.quote(str(value))}" for key, value in (env or {}).items()]
        out = shlex.quote(str(self.out / tag))
        self.lines.append(" ".join(["env", *assignments, shlex.quote(sys.executable), "-m", "yolor_ray.cli",
                                    *(shlex.quote(str(a)) for a in args)])
                          + f" >{out}.out 2>{out}.err; echo $? >{out}.rc")
        self.commands.append(tag)

    def free_space(self) -> None:
        """Delete the filler the planted hook left (support.storage_fault_hook)."""
        self.lines.append(f"rm -f {shlex.quote(str(self.mount / FILLER))}")

    def shell(self, line: str) -> None:
        self.lines.append(line)

    def run(self, timeout: float = 600) -> dict[str, Ran]:
        """Runs it; returns what each command printed, by tag. The tmpfs's files: ``out/kept``."""
        tiers.require(tiers.SUBPROCESS, "runs `yolor-ray` in a subprocess (a mount namespace)")
        kept = self.out / "kept"
        # Without the checkpoints' weights (100 MB each): their folders and run states are enough.
        mount, kept_there = shlex.quote(str(self.mount)), shlex.quote(str(kept))
        script = [*self.lines, f"mkdir -p {kept_there}",
                  f"tar -C {mount} --exclude='*.pth' -cf - . | tar -C {kept_there} -xf -"]
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", "\n".join(script)],
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return {tag: Ran(int((self.out / f"{tag}.rc").read_text()), (self.out / f"{tag}.out").read_text(),
                         (self.out / f"{tag}.err").read_text()) for tag in self.commands}
