"""The upload progress bar of ``pagedrop submit`` (stderr; no dependency).

On a terminal one line is rewritten with ``\\r``; anywhere else one line per finished file,
so a log is not flooded with partial updates.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

from handler.console.tables import format_bytes

BAR_CELLS = 24
REDRAW_EVERY_S = 0.1  # at most ten redraws a second: boto3 calls back for every 8 KiB chunk


class UploadProgress:
    """Bytes and files sent so far. :meth:`sent` is boto3's ``Callback``: it is called from
    the transfer's threads, hence the lock."""

    def __init__(
        self,
        total_bytes: int,
        total_files: int,
        stream: TextIO,
        *,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._total_bytes = total_bytes
        self._total_files = total_files
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._lock = threading.Lock()
        self._bytes = 0
        self._files = 0
        self._current = ""
        self._started = clock()
        self._last_draw = float("-inf")

    def start_file(self, key: str) -> None:
        with self._lock:
            self._current = key
            self._draw(force=True)

    def sent(self, count: int) -> None:
        with self._lock:
            self._bytes = max(0, self._bytes + count)  # a retried part may be counted back
            self._draw(force=False)

    def file_done(self, key: str, size: int) -> None:
        with self._lock:
            self._files += 1
            if self._tty:
                self._draw(force=True)
            else:
                self._stream.write(f"uploaded {self._counts()}  {key} ({format_bytes(size)})\n")
                self._stream.flush()

    def close(self) -> None:
        """End the bar's line (a terminal), so that what follows starts on its own."""
        with self._lock:
            if self._tty:
                self._draw(force=True)
                self._stream.write("\n")
                self._stream.flush()

    def line(self, width: int) -> str:
        """The bar as one line of at most ``width`` characters."""
        share = self._bytes / self._total_bytes if self._total_bytes else 1.0
        filled = round(min(1.0, share) * BAR_CELLS)
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = f"{format_bytes(self._bytes / elapsed)}/s"
        text = (
            f"{share:4.0%} [{'#' * filled}{'.' * (BAR_CELLS - filled)}] {self._counts()}  "
            f"{rate}  {self._current}"
        )
        return text[:width]

    def _counts(self) -> str:
        return (
            f"{format_bytes(self._bytes)}/{format_bytes(self._total_bytes)}, "
            f"{self._files}/{self._total_files} files"
        )

    def _draw(self, *, force: bool) -> None:
        if not self._tty:
            return
        now = self._clock()
        if not force and now - self._last_draw < REDRAW_EVERY_S:
            return
        self._last_draw = now
        width = shutil.get_terminal_size().columns - 1
        # \r and padding to the width: a shorter line must cover the longer one before it.
        self._stream.write("\r" + self.line(width).ljust(width))
        self._stream.flush()
