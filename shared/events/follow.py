"""Following a JSON-lines event log as it grows (the CLI's tail, the SSE local feed)."""

from __future__ import annotations

from pathlib import Path

READ_BYTES = 1024 * 1024  # one read_lines() reads at most this much; the next call goes on


class FileFollower:
    """Follows a JSON-lines file like `tail -F`: survives creation, truncation and rotation."""

    def __init__(self, path: Path, from_start: bool, position: int | None = None) -> None:
        """Follow from the start, from the end, or from byte `position` (a line start)."""
        self.path = path
        self.inode: int | None = None
        self.position = 0
        self.partial = b""
        try:
            stat = path.stat()
            self.inode = stat.st_ino
            if position is not None:
                self.position = position
            else:
                self.position = 0 if from_start else stat.st_size
        except FileNotFoundError:
            pass  # everything written once it appears is new

    def read_lines(self) -> list[bytes]:
        """The complete lines appended since the last call, at most READ_BYTES of them (the
        rest on the next call; blocking file I/O)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if stat.st_ino != self.inode or stat.st_size < self.position:
            self.inode, self.position, self.partial = stat.st_ino, 0, b""  # new or truncated
        if stat.st_size == self.position:
            return []
        with self.path.open("rb") as file:
            file.seek(self.position)
            chunk = file.read(READ_BYTES)
        self.position += len(chunk)
        # A writer appends whole lines, but we may read between its bytes: keep the tail.
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        return [line for line in lines if line.strip()]
