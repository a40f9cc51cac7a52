"""Logging a condition that lasts (stale keys, an unreachable cache) without
flooding the log.

Any client can make a request meet the condition again, hundreds of times a
second: one line each (let alone a traceback each) buries everything else in
the log and costs disk. So a condition is logged when it starts or changes,
then at most once per :data:`LOG_INTERVAL` with how many times it was met
meanwhile, and once more when it ends.
"""

from __future__ import annotations

import logging
import threading

#: Seconds between two log lines about a condition that has not changed.
LOG_INTERVAL = 60.0


class Outage:
    """One condition of one component; thread-safe. ``now`` is the caller's
    clock (the key store's, which tests move)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._lock = threading.Lock()
        self._state: str | None = None
        self._since = 0.0
        self._logged_at = 0.0
        self._unlogged = 0

    @property
    def state(self) -> str | None:
        """What is wrong, or None when nothing is."""
        return self._state

    def report(self, now: float, state: str, level: int, detail: str) -> None:
        """The condition ``state`` was met (again), ``detail`` saying how.

        Logged as ``"<state>: <detail>"`` when the state is new, then at most
        once per LOG_INTERVAL with the count of the times not logged. Both
        strings must be safe to log (no token; network text as repr())."""
        args: tuple[object, ...]
        with self._lock:
            if state != self._state:
                if self._state is None:
                    self._since = now
                self._state, self._logged_at, self._unlogged = state, now, 0
                message, args = "%s: %s", (state, detail)
            elif now - self._logged_at < LOG_INTERVAL:
                self._unlogged += 1
                return
            else:
                message = "%s: %s (and %d more times in the last %ds)"
                args = (state, detail, self._unlogged, int(now - self._logged_at))
                self._logged_at, self._unlogged = now, 0
        self.logger.log(level, message, *args)

    def clear(self, now: float) -> None:
        """The condition is over: logged once (INFO) if it had been reported."""
        if self._state is None:
            return  # the usual case, without taking the lock
        with self._lock:
            state, since, self._state = self._state, self._since, None
        if state is not None:
            self.logger.info("%s: recovered after %ds", state, int(now - since))
