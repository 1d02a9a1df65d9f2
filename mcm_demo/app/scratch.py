"""The app's temporary files: private folders it creates itself, swept on a timer and removed
at exit, so a long-running server leaves nothing behind and trusts no folder made by another.

A fixed name under /tmp (as before) may already exist, made by another user, who could then
read or swap what we write; `tempfile.mkdtemp` makes a new folder, mode 0700, every time.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid


class PrivateFolder:
    """A folder made on first use by `tempfile.mkdtemp` (mode 0700). Entries older than
    `max_age_s`, and the oldest beyond `max_entries`, are removed every `sweep_every_s` by a
    daemon timer and whenever a new path is handed out; the folder goes at interpreter exit."""

    def __init__(
        self, prefix: str, max_age_s: float, max_entries: int, sweep_every_s: float = 300.0
    ):
        self.prefix, self.max_age_s, self.max_entries = prefix, max_age_s, max_entries
        self.sweep_every_s = sweep_every_s
        self._path: str | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @property
    def path(self) -> str:
        with self._lock:
            if self._path is None or not os.path.isdir(self._path):
                self._path = tempfile.mkdtemp(prefix=self.prefix)
                atexit.register(self.remove)
                self._schedule()
            return self._path

    def new_path(self, suffix: str = "") -> str:
        """A unique path inside the folder (nothing is created)."""
        folder = self.path
        self.sweep()
        return os.path.join(folder, uuid.uuid4().hex + suffix)

    def sweep(self) -> None:
        """Remove entries past their age, then the oldest past the count."""
        folder = self._path
        if folder is None:
            return
        now, entries = time.time(), []
        try:
            names = os.listdir(folder)
        except OSError:  # removed meanwhile (exit)
            return
        for name in names:
            path = os.path.join(folder, name)
            try:
                entries.append((os.path.getmtime(path), path))
            except OSError:  # another sweep removed it first
                pass
        entries.sort(reverse=True)  # newest first
        for i, (mtime, path) in enumerate(entries):
            if i >= self.max_entries or now - mtime > self.max_age_s:
                _remove(path)

    def size_bytes(self) -> int:
        folder = self._path
        if folder is None:
            return 0
        total = 0
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        return total

    def remove(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._path is not None:
                shutil.rmtree(self._path, ignore_errors=True)
            self._path, self._timer = None, None

    def _schedule(self) -> None:
        def tick():
            self.sweep()
            with self._lock:
                if self._path is not None:
                    self._schedule()

        self._timer = threading.Timer(self.sweep_every_s, tick)
        self._timer.daemon = True
        self._timer.start()


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:  # already gone
            pass
