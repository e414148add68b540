"""Where a study lives: a journal file or a database, opened once per process and shared by masklab's
queue and optuna's study, with passwords kept out of messages and command lines.

- One storage object per process. Given a bare `RDBStorage`, optuna wraps it in a per-process cache
  whose trial-id map only knows trials that this process created or listed through that cache; a trial
  claimed through the bare storage is unknown to it (KeyError in `set_trial_param`). masklab hands
  optuna a `ResilientStorage` instead, which optuna uses as it is: every read and write, masklab's
  and optuna's, goes through the same object straight to the database, and no cache can miss a
  trial another machine enqueued.
- SQLite: Python's sqlite3 driver opens a transaction only at the first write, so two processes can
  both read a trial as WAITING and both set it RUNNING. `BEGIN IMMEDIATE` takes the write lock first,
  which makes optuna's read-then-update one atomic step (PostgreSQL does it with `SELECT ... FOR UPDATE`).
- A database that goes away for a moment (a server restart, a failover, a dropped connection) is
  waited for with backoff, said in one line, for up to PATIENCE_SECONDS.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path

import optuna
import sqlalchemy.exc as sa
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from sqlalchemy import event

from masklab.errors import UserError

STORAGE_ENV = "MASKLAB_STUDY_STORAGE"  # how --jobs hands the URL to its workers: not on a command line `ps` shows
PATIENCE_SECONDS = 600.0  # a restart takes seconds, a failover a minute or two; longer is an outage to report
CONNECT_TIMEOUT_SECONDS = 10  # an unreachable host (packets dropped, no refusal) fails in this time, not minutes
_URL_PASSWORD = re.compile(r"([a-z][\w+.-]*://[^:/@\s'\"]*:)[^@\s'\"]*@", re.IGNORECASE)


class StorageLost(UserError):
    """The database stayed away longer than PATIENCE_SECONDS: stop the worker (exit 2), leave its trial running
    so another worker re-queues it, rather than record a failure that was the database's."""


def redact(text: str, url: str | None = None) -> str:
    """`text` with every URL's password replaced by ***, and `url`'s password wherever it appears on its own."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    password = _password(url)
    if password and len(password) >= 6:  # a short one would blank out ordinary words of the message
        text = text.replace(password, "***")
    return text


def _password(url: str | None) -> str:
    match = _URL_PASSWORD.search(url or "")
    return match.group(0)[len(match.group(1)) : -1] if match else ""


def _first_line(exc: BaseException) -> str:
    """What the driver said (optuna wraps it in a generic "error during the commit"), first line."""
    seen: BaseException | None = exc
    while seen is not None and getattr(seen, "orig", None) is None and (seen.__cause__ or seen.__context__):
        seen = seen.__cause__ or seen.__context__
    said = getattr(seen, "orig", None) or seen or exc
    text = str(said).strip()
    return text.splitlines()[0][:200] if text else type(said).__name__


def transient(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is the database being away, not a bad request: a refused or dropped
    connection, a server shutting down, SQLite's lock held by another process."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (sa.OperationalError, sa.InterfaceError)) or getattr(seen, "connection_invalidated", False):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def open_storage(url: str | None, study_dir: Path):
    """The journal file STUDY/journal.log, or the database at `url` (checked by connecting)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not url or (url.endswith(".log") and "://" not in url):
        if not url:
            study_dir.mkdir(parents=True, exist_ok=True)
        path = url or str(study_dir / "journal.log")
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    return ResilientStorage(_connect(url), url)


def _connect(url: str):
    """optuna's RDBStorage at `url`; a refused, unknown or unparsable database is one line naming the fix."""
    driver_url, engine_kwargs = _engine_settings(url)
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(driver_url, engine_kwargs=engine_kwargs)
            break
        except Exception as exc:  # sqlalchemy's connection and driver errors, and malformed URLs
            if _creating_tables_side_by_side(exc) and attempt < 4:
                time.sleep(0.5)  # another worker is creating optuna's tables this instant: they exist in a moment
                continue
            said = redact(_first_line(exc), url)
            raise UserError(
                f"cannot reach the study storage {redact(url)} ({said}); check the URL, the user and "
                "password, that the server runs and that its driver is installed (pip install "
                "'masklab[postgres]' for postgresql://), or leave --storage out for a journal file in the "
                "study directory"
            ) from None
    if storage.engine.name == "sqlite":
        event.listen(storage.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


def _engine_settings(url: str) -> tuple[str, dict]:
    kwargs: dict = {"pool_pre_ping": True}  # a pooled connection the server dropped (restart) is replaced, not used
    if url.startswith("postgresql://"):  # SQLAlchemy's default driver is psycopg2; masklab[postgres] installs psycopg 3
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    elif url.startswith("sqlite"):
        # autocommit in the driver, so the BEGIN IMMEDIATE sent at each transaction's start is the only BEGIN;
        # a 60 s busy timeout lets a worker wait for another's short write instead of failing on it
        kwargs["connect_args"] = {"isolation_level": None, "timeout": 60}
    return url, kwargs


def _creating_tables_side_by_side(exc: BaseException) -> bool:
    """optuna creates its tables and version row at the first connection: workers starting on a new database at
    the same instant collide on them (a unique key, a table that now exists, SQLite's lock)."""
    text = str(exc).lower()
    return isinstance(exc, sa.IntegrityError) or "already exists" in text or "database is locked" in text


class _Outage:
    """One line per outage, however many threads (the trial and its heartbeat) wait on it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.since: float | None = None

    def start(self, url: str, exc: BaseException) -> float:
        with self.lock:
            if self.since is None:
                self.since = time.monotonic()
                print(
                    f"masklab: lost the study storage {redact(url)} ({redact(_first_line(exc), url)}); waiting and "
                    f"retrying with backoff for up to {PATIENCE_SECONDS:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
            return self.since

    def end(self) -> None:
        if self.since is not None:
            with self.lock:
                self.since = None


class ResilientStorage(optuna.storages.BaseStorage):
    """An optuna storage passing every call to a database storage, and riding out the database's absence.
    (optuna's documented way to bring a storage of one's own: a BaseStorage; nothing of RDBStorage is changed.)"""

    def __init__(self, backend, url: str, patience: float = PATIENCE_SECONDS):
        self.backend, self.url, self.patience = backend, url, patience
        self.outage = _Outage()

    def _call(self, name: str, args: tuple, kwargs: dict):
        delay, first_try = 0.5, True
        while True:
            try:
                result = getattr(self.backend, name)(*args, **kwargs)
            except Exception as exc:
                if not first_try and name == "set_trial_state_values" and self._landed(exc, args, kwargs):
                    self.outage.end()
                    return True  # the try before the connection dropped was committed
                if not transient(exc):
                    raise
                since = self.outage.start(self.url, exc)
                if time.monotonic() - since > self.patience:
                    raise StorageLost(
                        f"the study storage {redact(self.url)} has been unreachable for "
                        f"{self.patience:.0f} s ({redact(_first_line(exc), self.url)}); this worker "
                        "stops and the others queue its trial again; start it again when the database "
                        "is back"
                    ) from None
                time.sleep(delay)
                delay, first_try = min(2 * delay, 30.0), False
                continue
            self.outage.end()
            return result

    def _landed(self, exc: BaseException, args: tuple, kwargs: dict) -> bool:
        """A state change refused as "already finished" after a dropped connection: ours, if it holds that state."""
        if not isinstance(exc, optuna.exceptions.UpdateFinishedTrialError):
            return False
        trial_id, state = args[0], kwargs.get("state", args[1] if len(args) > 1 else None)
        return self.backend.get_trial(trial_id).state == state


def _passed_on(name: str):
    def method(self, *args, **kwargs):
        return self._call(name, args, kwargs)

    method.__name__ = method.__qualname__ = name
    return method


# every abstract method, and those RDBStorage answers in one query where the base class would take several
_ONE_QUERY = {"get_best_trial", "get_trial_id_from_study_id_trial_number", "remove_session"}
for _name in ResilientStorage.__abstractmethods__ | _ONE_QUERY:
    setattr(ResilientStorage, _name, _passed_on(_name))
ResilientStorage.__abstractmethods__ = frozenset()
