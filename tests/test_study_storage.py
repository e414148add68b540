"""Studies in a database, tested the way many machines use one: workers started at the same instant, a worker
killed mid-trial, the server restarted mid-study, the report written from a place that holds no trial.

PostgreSQL is a throwaway cluster made here from Debian's binaries (scripts/setup.sh installs them);
SQLite runs beside it. Trials are the tiny model for a few steps: the processes are what is under test.
"""

from __future__ import annotations

import csv
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import base_settings, masklab, worker_command, write_study
from masklab.study.storage import STORAGE_ENV, open_storage, redact

PASSWORD = "s3cret-pw-42"  # long enough that redact() also blanks it where it stands alone


# -- a throwaway PostgreSQL server ---------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL's bin directory, or the one on PATH; None when there is no server."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A cluster in a temporary directory on a free loopback port, run by a non-root user (initdb refuses root)."""

    def __init__(self, bin_dir: Path):
        self.bin, self.port = bin_dir, free_port()
        self.root = Path(tempfile.mkdtemp(prefix="masklab-pg-"))  # under /tmp: the server's user can reach it
        self.user = None
        if os.geteuid() == 0:
            self.user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if self.user is None:
                pytest.skip("running as root and no postgres or nobody user to run the server as")
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        (self.root / "pw").write_text(PASSWORD + "\n")
        if self.user:
            os.chown(self.root / "pw", pwd.getpwnam(self.user).pw_uid, -1)
        self._run(
            "initdb",
            "-D",
            self.root / "data",
            "-U",
            "ml",
            f"--pwfile={self.root / 'pw'}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self.start()

    def _run(self, tool: str, *args) -> None:
        as_user = {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []} if self.user else {}
        done = subprocess.run(
            [str(self.bin / tool), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,
            **as_user,
        )
        assert done.returncode == 0, f"{tool}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        # fsync off: a throwaway cluster; the tests restart it cleanly (fast shutdown), never crash it
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", self.root / "data", "-l", self.root / "log", "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.root / "data", "-m", mode, "-w", "stop")

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://ml:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="ml", password=PASSWORD, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def postgres():
    pytest.importorskip("psycopg", reason="the postgres extra (pip install 'masklab[postgres]') is not installed")
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; "
            "scripts/setup.sh installs Debian's postgresql when run as root"
        )
    server = Postgres(bin_dir)
    yield server
    server.close()


@pytest.fixture
def database(postgres, request):
    """A fresh database on the module's server: its URL (with the password)."""
    return postgres.create_database(re.sub(r"\W", "_", request.node.name)[:60].lower())


@pytest.fixture(params=["postgresql", "sqlite"])
def storage_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("database")


# -- helpers ------------------------------------------------------------------------------------------


def worker(path: Path, out: Path, url: str, log: Path) -> subprocess.Popen:
    """`masklab study --worker` as another machine would start it; the URL in the environment, output to `log`."""
    env = {**os.environ, STORAGE_ENV: url, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        worker_command(path, out),
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def stored_rows(path: Path, url: str, where: Path):
    from masklab.study import queue
    from masklab.study.results import rows
    from masklab.study.spec import load_spec

    study, _ = queue.open_study(load_spec(str(path)), open_storage(url, where))
    return rows(study)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(0.2)


# -- exactly once -------------------------------------------------------------------------------------


def test_four_workers_started_at_once_run_every_trial_once(storage_url, tmp_path, corpus_file, monkeypatch, capsys):
    path = write_study(
        tmp_path / "s.yaml",
        corpus_file,
        base=base_settings(corpus_file, train__max_steps=10, train__eval_every=0, train__save_every=0),
    )
    procs = [worker(path, tmp_path / f"machine{i}", storage_url, tmp_path / f"w{i}.log") for i in range(4)]
    for p in procs:
        p.wait(timeout=240)
    logs = [(tmp_path / f"w{i}.log").read_text() for i in range(4)]
    assert [p.returncode for p in procs] == [0] * 4, logs
    done = stored_rows(path, storage_url, tmp_path / "check")
    assert sorted((r.point["masking.rate"], r.seed) for r in done) == [(0.15, 0), (0.15, 1), (0.3, 0), (0.3, 1)]
    assert all(r.state == "complete" for r in done), [(r.number, r.state, r.error) for r in done]
    assert sum(int(re.search(r"finished (\d+) trial", log).group(1)) for log in logs) == 4
    assert all(r.curves[0][-1]["tokens"] > r.curves[0][0]["tokens"] for r in done)  # learning curves travel too
    # A fifth process, in another directory, with an --out that does not exist: the report comes from the storage alone.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, stdout, err = masklab(
        monkeypatch, capsys, "study", path, "--storage", storage_url, "--out", "new/dir", "--report"
    )
    assert code == 0, err
    assert "4 complete" in stdout and not (elsewhere / "new" / "dir" / "trials").exists()
    with (elsewhere / "new" / "dir" / "results.csv").open() as f:
        table = {(float(r["masking.rate"]), int(r["seed"])): r for r in csv.DictReader(f)}
    stored = {(r.point["masking.rate"], r.seed): r.value for r in done}
    assert {k: float(r["value"]) for k, r in table.items()} == stored
    assert all(float(r["masked_accuracy"]) == float(r["value"]) for r in table.values())  # the summary's numbers too
    code, stdout, _ = masklab(monkeypatch, capsys, "study", path, "--storage", storage_url, "--out", "st", "--status")
    assert code == 0 and "4 complete" in stdout


def test_two_copies_of_a_trial_run_once(tmp_path, corpus_file):
    """Enqueued twice (joiners finishing a dead creator's grid, an enqueue retried after a dropped connection):
    the copy popped second is set aside as a duplicate, never run, never retried."""
    from masklab.study import queue
    from masklab.study.results import rows
    from masklab.study.spec import load_spec

    spec = load_spec(str(write_study(tmp_path / "s.yaml", corpus_file, seeds=[0], grid={"masking.rate": [0.2]})))
    storage = open_storage(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    study, _ = queue.open_study(spec, storage)
    for _ in range(2):
        queue.enqueue(study, {"masking.rate": 0.2}, 0, "grid")
    first = queue.pop_waiting(study, storage)
    assert first is not None and first.number == 0
    assert queue.pop_waiting(study, storage) is None  # the copy is set aside, nothing else waits
    assert [r.state for r in rows(study)] == ["running", "duplicate"] and queue.retry_failed(study) == 0


def test_sqlite_workers_popping_at_once_never_share_a_trial(tmp_path, corpus_file):
    """Four threads, each with its own connection, pop 40 trials: each trial goes to one of them (SQLite's
    driver would let two read WAITING and both write RUNNING without BEGIN IMMEDIATE)."""
    from masklab.study import queue
    from masklab.study.spec import load_spec

    spec = load_spec(str(write_study(tmp_path / "s.yaml", corpus_file, seeds=[0], grid={"masking.rate": [0.2]})))
    url = f"sqlite:///{tmp_path / 'x.db'}"
    study, _ = queue.open_study(spec, open_storage(url, tmp_path))
    for i in range(40):
        queue.enqueue(study, {"masking.rate": 0.2, "n": i}, 0, "grid")
    popped: list[list[int]] = [[] for _ in range(4)]

    def pop_all(mine: list[int]) -> None:
        storage = open_storage(url, tmp_path)
        own, _ = queue.open_study(spec, storage)
        while (trial := queue.pop_waiting(own, storage)) is not None:
            mine.append(trial.number)

    threads = [threading.Thread(target=pop_all, args=(mine,)) for mine in popped]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    everything = [n for mine in popped for n in mine]
    assert sorted(everything) == list(range(40))


# -- faults -------------------------------------------------------------------------------------------


def test_a_killed_worker_and_a_server_restart_lose_nothing(
    postgres, database, tmp_path, corpus_file, monkeypatch, capsys
):
    base = base_settings(corpus_file, train__max_steps=200, train__save_every=10, train__eval_every=0)
    path = write_study(tmp_path / "s.yaml", corpus_file, base=base, grid={"masking.rate": [0.2]}, seeds=[0, 1])
    first = worker(path, tmp_path / "a", database, tmp_path / "a.log")
    wait_for(lambda: list((tmp_path / "a").glob("trials/*/checkpoint/trainer_state.pt")), 120, "a first checkpoint")
    first.send_signal(signal.SIGKILL)  # mid-trial, as a machine that loses power
    first.wait()
    second = worker(path, tmp_path / "b", database, tmp_path / "b.log")  # sees the dead pid: re-queues at once
    wait_for(lambda: list((tmp_path / "b").glob("trials/*/metrics.jsonl")), 120, "the second worker's first trial")
    postgres.stop()  # mid-study, mid-trial
    log = tmp_path / "b.log"
    wait_for(lambda: "lost the study storage" in log.read_text(), 120, "the worker to notice the server is gone")
    time.sleep(1.0)  # a few of its retries fail
    postgres.start()
    second.wait(timeout=180)
    text = log.read_text()
    assert second.returncode == 0, text
    assert text.count("lost the study storage") == 1 and PASSWORD not in text and "ml:***@" in text
    done = stored_rows(path, database, tmp_path / "check")
    assert sorted(r.state for r in done) == ["complete", "complete", "retried"], [(r.state, r.error) for r in done]
    killed = next(r for r in done if r.state == "retried")
    assert killed.seed == 0 and "stopped" in killed.error
    assert [r.seed for r in done if r.retry_of == killed.number and r.state == "complete"] == [0]  # finished once
    code, stdout, err = masklab(
        monkeypatch, capsys, "study", path, "--storage", database, "--out", tmp_path / "r", "--report"
    )
    assert code == 0 and "2 complete, 1 retried" in stdout, err


# -- bad input ----------------------------------------------------------------------------------------


def test_wrong_credentials_and_another_definition_are_one_line(
    postgres, database, tmp_path, corpus_file, monkeypatch, capsys
):
    from masklab.study import queue
    from masklab.study.spec import load_spec

    path = write_study(tmp_path / "s.yaml", corpus_file)
    wrong = postgres.url(database.rsplit("/", 1)[1], password="not-the-password-17")
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--storage", wrong, "--out", tmp_path / "o", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "password authentication failed" in err, err
    assert "not-the-password-17" not in err and "ml:***@" in err
    queue.open_study(load_spec(str(path)), open_storage(database, tmp_path / "first"))  # the study, as first defined
    other = write_study(tmp_path / "other.yaml", corpus_file, grid={"masking.rate": [0.15, 0.4]})
    monkeypatch.setenv(STORAGE_ENV, database)  # from the environment, as --jobs passes it to its workers
    code, _, err = masklab(monkeypatch, capsys, "study", other, "--out", tmp_path / "o", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "different definition (grid differ)" in err, err
    assert not (tmp_path / "o" / "trials").exists()


@pytest.mark.parametrize(
    "text, url, expected",
    [
        (
            "at postgresql+psycopg://ml:pw@db:5432/s (refused)",
            None,
            "at postgresql+psycopg://ml:***@db:5432/s (refused)",
        ),
        ("'mysql://u:p%40ss@h/d'", None, "'mysql://u:***@h/d'"),
        (
            "no password: sqlite:///x.db and postgresql://ml@h/d",
            None,
            "no password: sqlite:///x.db and postgresql://ml@h/d",
        ),
        ("the driver said: s3cret-pw-42 is wrong", f"postgresql://ml:{PASSWORD}@h/d", "the driver said: *** is wrong"),
    ],
)
def test_passwords_never_reach_a_message(text, url, expected):
    assert redact(text, url) == expected


def test_jobs_pass_the_storage_to_workers_by_environment(tmp_path):
    from masklab.study.spec import StudySpec
    from masklab.study.worker import _worker_command, _worker_env

    url = f"postgresql://ml:{PASSWORD}@127.0.0.1:5432/studies"
    spec = StudySpec(name="s", run="pretrain", metric="m", goal="maximize", seeds=[0, 1, 2, 3], scale="quick")
    command = _worker_command(spec, "s.yaml", tmp_path, 1)
    # the launcher's stored seeds travel with the worker, so it joins a grown study instead of growing it again
    assert command[command.index("--seeds") + 1] == "0-3" and command[command.index("--scale") + 1] == "quick"
    assert not any(PASSWORD in part or "--storage" == part for part in command)  # what `ps` shows
    assert _worker_env(url, 1, None)[STORAGE_ENV] == url
    assert STORAGE_ENV not in _worker_env(None, 1, None)  # a journal study: no stale URL from the caller's environment
