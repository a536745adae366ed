"""A throwaway PostgreSQL server on 127.0.0.1 for the job store's contract tests and the
service benchmark (dev-only)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["PostgresFailed", "PostgresServer", "PostgresUnavailable", "throwaway_postgres"]

_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running server on 127.0.0.1 that trusts local connections as `postgres`."""

    port: int
    database: str

    def url(self) -> str:
        """The SQLAlchemy URL of the server's test database."""
        return f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    def connect(self) -> psycopg.Connection[Any]:
        """A plain autocommit connection to the test database."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=_SUPERUSER, dbname=self.database,
            autocommit=True,
        )  # fmt: skip


def _server_bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, newest major version first."""
    candidates: list[Path] = []
    for program in _SERVER_PROGRAMS:
        found = shutil.which(program)
        if found:
            # /usr/local/bin/pg_ctl links into the version's own bin folder.
            candidates.append(Path(found).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in versions), key=lambda p: p.parent.name, reverse=True)
    for folder in candidates:
        if all(os.access(folder / p, os.X_OK) for p in _SERVER_PROGRAMS):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


class PostgresUnavailable(Exception):
    """No PostgreSQL server binaries on this machine."""


class PostgresFailed(Exception):
    """The binaries are there but the server did not start (the message has its log)."""


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """Starts PostgreSQL in a temporary folder and stops and deletes it on leaving.

    initdb and postgres refuse to run as root, so as root (as in CI) the server runs as
    the `postgres` system user the Debian package creates. Durability is off (fsync,
    synchronous commit): fine for tests, optimistic for timings.

    Raises:
        PostgresUnavailable: No server binaries are installed.
        PostgresFailed: They are, but the server could not be started.
    """
    bin_dir = _server_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
            "/usr/lib/postgresql/*/bin or on PATH: install the Debian package postgresql-15"
        )
    run_as: dict[str, Any] = {}
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(_SUPERUSER)
        except KeyError:
            raise PostgresFailed(
                f"running as root, and PostgreSQL refuses root: a '{_SUPERUSER}' system user "
                "is needed to run the test server (the postgresql-15 package creates it)"
            ) from None
        run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    # Not under a test's tmp_path: its folders are private to root, so the server user
    # could not reach them.
    root = Path(tempfile.mkdtemp(prefix="silobridge-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / args[0]), *args[1:]], cwd=root, capture_output=True, text=True,
            timeout=60, check=False, **run_as,
        )  # fmt: skip

    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        # Durability is worthless for a throwaway server; skipping fsync keeps it fast.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        init = run(
            "initdb", "-D", str(data), "-U", _SUPERUSER, "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            raise PostgresFailed(
                f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}"
            )
        start = run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "30",
                    "start")  # fmt: skip
        if start.returncode != 0:
            raise PostgresFailed(
                f"PostgreSQL did not start on 127.0.0.1:{port} ({start.returncode}):\n"
                f"{start.stdout}\n{start.stderr}\n{_tail(log)}"
            )
        try:
            server = PostgresServer(port=port, database="silobridge_test")
            with psycopg.connect(
                host="127.0.0.1", port=port, user=_SUPERUSER, dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(f"CREATE DATABASE {server.database}")
            yield server
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
