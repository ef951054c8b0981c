"""A real ``sqlite3`` command-line shell on a file: another process that holds the spool's
locks (an operator's session, a peer frozen mid-write), for the tests that need one."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from recorder_support import WAIT

SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
needs_shell = pytest.mark.skipif(
    not os.access(SQLITE3, os.X_OK), reason=f"needs the sqlite3 shell ({SQLITE3})"
)
_DONE = "shell-done"


class Shell:
    """``sqlite3 -bail PATH``: each ``do`` returns once the shell ran it (a statement that
    fails ends the shell, and ``do`` says so); ``.timeout`` lets it wait for the recorder's own
    short transactions before it takes a lock."""

    def __init__(self, path: Path | str) -> None:
        self.process = subprocess.Popen(
            [SQLITE3, "-bail", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
        )
        self.do(f".timeout {int(WAIT * 1000)}")

    def do(self, sql: str) -> str:
        """Run ``sql``; what it printed, once it is done."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(f"{sql}\nSELECT '{_DONE}';\n".encode())
            stdin.flush()
        except BrokenPipeError:  # the shell ended: what it said comes below
            pass
        out = b""
        deadline = time.monotonic() + WAIT
        while _DONE.encode() not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"the sqlite3 shell did not answer {sql!r}: {out!r}"
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                chunk = os.read(stdout.fileno(), 65536)
                assert chunk, f"the sqlite3 shell ended on {sql!r}: {out!r}"
                out += chunk
        return out.decode().replace(_DONE, "").strip()

    def end(self) -> None:
        """Quit (an open transaction is rolled back); the locks are gone when this returns."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.close()
                self.process.wait(timeout=WAIT)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=WAIT)
        for stream in (self.process.stdout,):
            if stream is not None:
                stream.close()


@contextmanager
def shell_lock(path: Path | str, begin: str = "BEGIN IMMEDIATE;") -> Iterator[Shell]:
    """A shell holding the lock ``begin`` takes on ``path`` for the block, then committing and
    quitting (the lock is gone once the block is left)."""
    shell = Shell(path)
    try:
        shell.do(begin)
        yield shell
        if shell.process.poll() is None:
            shell.do("COMMIT;")
    finally:
        shell.end()
