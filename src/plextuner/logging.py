"""structlog set-up: JSON off a TTY, console on one; every event scrubbed of credentials."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, TextIO

from plextuner.redact import SECRETS

if TYPE_CHECKING:
    import structlog


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return SECRETS.scrub(value)
    if isinstance(value, BaseException):
        return SECRETS.scrub(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {SECRETS.scrub(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, int | float | bool):
        return value
    return SECRETS.scrub(str(value))


def scrub_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Redact URL credentials and every registered secret from each value of the event."""
    for key, value in list(event.items()):
        event[key] = _scrub(value)
    return event


def configure_logging(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog once per process (the CLI calls this)."""
    import structlog

    out = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=(
            structlog.PrintLoggerFactory(stream) if stream is not None else _StderrLoggerFactory()
        ),
        cache_logger_on_first_use=False,
    )
    bridge_library_logs(max(logging.getLevelNamesMapping()[level.upper()], logging.INFO))


# Libraries that log through the standard library (aiohttp's server logs a traceback for every
# malformed request, asyncio for lost tasks): their records become one structured line each.
BRIDGED_LOGGERS = ("aiohttp", "asyncio")
_MAX_FIELD = 300


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_FIELD else text[:_MAX_FIELD] + "…"


class _LibraryBridge(logging.Handler):
    """stdlib records → structlog events; a client's malformed request never prints a
    traceback (the client controls how many it sends), a library's own failure keeps it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc = record.exc_info[1] if record.exc_info else None
            fields: dict[str, Any] = {"logger": record.name}
            if _is_bad_request(exc):
                event, level = "http_bad_request", logging.INFO
                fields["error"] = _one_line(f"{type(exc).__name__}: {exc}")
            else:
                event, level = "library_log", record.levelno
                fields["message"] = _one_line(record.getMessage())
                if exc is not None:
                    fields["exc_info"] = record.exc_info
            get_logger(record.name).log(level, event, **fields)
        except Exception:  # noqa: BLE001 - supervision boundary: logging never raises
            self.handleError(record)


def _is_bad_request(exc: BaseException | None) -> bool:
    from aiohttp.http_exceptions import HttpProcessingError

    return isinstance(exc, HttpProcessingError)


def bridge_library_logs(level: int = logging.INFO) -> None:
    handler = _LibraryBridge()
    for name in BRIDGED_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers = [handler]
        lib.propagate = False
        lib.setLevel(level)


class _StderrLogger:
    """Writes to whatever sys.stderr is at the time (tests swap it; a daemon never does)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    def __call__(self, *args: Any) -> _StderrLogger:
        return _StderrLogger()


class _Deferred:
    """A module's logger, structlog's own from its first use on: a process that never logs
    (the guide's second-half helper, epg/halves.py) does not import structlog, which imports
    asyncio, ssl and greenlet: 9 MB of a helper's ~50."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: structlog.typing.BindableLogger | None = None

    def __getattr__(self, attr: str) -> Any:
        logger = self._logger
        if logger is None:
            import structlog

            logger = self._logger = structlog.get_logger(self._name)
        return getattr(logger, attr)


def get_logger(name: str) -> Any:
    return _Deferred(name)
