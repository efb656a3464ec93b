"""A driver's chores that run beside its loop, each from a daemon thread every few seconds."""

from __future__ import annotations

import threading


class Periodic:
    """Calls ``tick`` every ``seconds`` from a daemon thread named ``name``, from ``start`` to ``stop``."""

    seconds: float
    name: str

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            if self.tick() is False:
                return

    def tick(self) -> bool | None:
        """One round of the chore; False ends the thread."""
        raise NotImplementedError
