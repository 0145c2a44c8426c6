"""Real PostgreSQL 15 + pgaudit, MariaDB + server_audit and OpenSSH internal-sftp, each on a
loopback port in a temporary folder, with the traffic the raw-source tests need. Used by
`tests/fixtures/raw/capture.py` (which wrote the committed fixtures) and by the slow test that
runs the servers when this machine has them (Debian: postgresql-15 postgresql-15-pgaudit
mariadb-server openssh-server; run as root: PostgreSQL runs as `postgres`, sshd must chroot)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.embedded import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PREFIX = "%m [%p] %q%u@%d app=%a "  # not Debian's default: the parser must follow the setting
SFTP_ACCOUNTS = ("acme_collect", "partner_ins", "hk_fx")


def available() -> str | None:
    """Why the real servers cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (PostgreSQL runs as postgres, sshd chroots)"
    for path in (
        PG_BIN / "postgres",
        Path("/usr/lib/postgresql/15/lib/pgaudit.so"),
        Path("/usr/sbin/mariadbd"),
        Path("/usr/sbin/sshd"),
        Path("/usr/bin/sftp"),
    ):
        if not path.exists():
            return f"{path} missing (apt-get install postgresql-15 postgresql-15-pgaudit mariadb-server openssh-server)"
    return None


def _run(cmd: list[str], user: str | None = None, **kw: object) -> str:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    if done.returncode != 0 and not kw.get("input_ok_fail"):
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return done.stdout + done.stderr


# -- PostgreSQL + pgaudit ---------------------------------------------------------------------------
PG_SETUP = """
CREATE DATABASE corebank;
\\c corebank
CREATE EXTENSION pgaudit;
CREATE SCHEMA core;
CREATE TABLE core.customers (customer_id text PRIMARY KEY, customer_name text, id_document_no text,
                             mobile_phone text, org_id text);
CREATE TABLE core.accounts (account_no text PRIMARY KEY, customer_id text, balance numeric);
CREATE TABLE core.credit_reports (customer_id text, report text);
CREATE TABLE core.branch_targets (org_id text, target numeric);
INSERT INTO core.customers SELECT 'C' || lpad(g::text, 6, '0'), 'name' || g, 'ID' || g,
       '138' || lpad(g::text, 8, '0'), CASE WHEN g % 2 = 0 THEN 'S0101' ELSE 'S0202' END
  FROM generate_series(1, 700) g;
INSERT INTO core.accounts SELECT 'A' || lpad(g::text, 8, '0'), 'C' || lpad(g::text, 6, '0'), g * 10
  FROM generate_series(1, 700) g;
CREATE ROLE teller_wang LOGIN; CREATE ROLE analyst_zhao LOGIN;
GRANT USAGE ON SCHEMA core TO teller_wang, analyst_zhao;
GRANT SELECT ON core.customers, core.accounts, core.branch_targets TO teller_wang, analyst_zhao;
"""
# a teller's day: single lookups (one with commas, quotes and newlines, one a join, one with a bound
# parameter), a denied read of credit reports, a cursor; then an analyst's bulk read of 600 balances
PG_TELLER = """
SELECT customer_name, mobile_phone FROM core.customers WHERE customer_id = 'C000042';
SELECT c.customer_name, a.balance
  FROM core.customers c JOIN core.accounts a ON a.customer_id = c.customer_id
 WHERE c.customer_id = 'C000043' AND c.customer_name <> 'it''s, "quoted"';
SELECT * FROM core.credit_reports WHERE customer_id = 'C000044';
BEGIN; DECLARE cur CURSOR FOR SELECT * FROM core.accounts; FETCH 10 FROM cur; CLOSE cur; COMMIT;
PREPARE q(text) AS SELECT balance FROM core.accounts WHERE customer_id = $1; EXECUTE q('C000045');
SELECT target FROM core.branch_targets WHERE org_id = 'S0101';
"""
PG_ANALYST = """
SELECT c.customer_id, a.balance FROM core.customers c JOIN core.accounts a USING (customer_id)
 ORDER BY c.customer_id LIMIT 600;
"""


@contextmanager
def postgres(traffic: list[tuple[str, str, str]] | None = None) -> Iterator[Path]:
    """A running pgaudit-enabled cluster; yields its log folder (postgresql.log, postgresql.csv).
    `traffic`: (login, application, psql input) sessions, by default the teller's and the analyst's."""
    base = Path(tempfile.mkdtemp(prefix="lifemon-pg-"))
    shutil.chown(base, "postgres")
    data, logs, port = base / "data", base / "log", free_port()
    _run([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], user="postgres")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{base}'\n"
            "shared_preload_libraries = 'pgaudit'\nlogging_collector = on\n"
            f"log_destination = 'stderr,csvlog'\nlog_directory = '{logs}'\nlog_filename = 'postgresql'\n"
            f"log_line_prefix = '{PG_PREFIX}'\nlog_timezone = 'UTC'\n"
            "pgaudit.log = 'read,write'\npgaudit.log_rows = on\npgaudit.log_relation = on\n"
            "pgaudit.log_parameter = on\npgaudit.log_catalog = off\n"
        )
    _run(
        [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "boot.log"), "start"],
        user="postgres",
    )
    try:
        env = {**os.environ, "PGOPTIONS": "-c pgaudit.log=none"}  # the setup is not the bank's traffic
        _run(
            ["psql", "-h", str(base), "-p", str(port), "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"],
            input=PG_SETUP,
            env=env,
        )
        for user, app, sql in traffic or [
            ("teller_wang", "teller-desk", PG_TELLER),
            ("analyst_zhao", "bi-report", PG_ANALYST),
        ]:
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-q", "corebank"],
                input=sql,
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "PGAPPNAME": app},
            )
        # the logging collector writes asynchronously: a fixed wait lost the last statement on a
        # loaded machine; a stopped server has written everything (pg_ctl waits for the shutdown)
        _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], user="postgres")
        yield logs
    finally:
        if (data / "postmaster.pid").exists():
            _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], user="postgres")
        shutil.rmtree(base, ignore_errors=True)


# -- MariaDB + server_audit -------------------------------------------------------------------------
MY_SETUP = """
CREATE DATABASE cards;
CREATE TABLE cards.cardholders (customer_id varchar(16) PRIMARY KEY, customer_name varchar(64),
                                mobile_phone varchar(20), org_id varchar(8));
CREATE TABLE cards.card_txn (txn_id int PRIMARY KEY AUTO_INCREMENT, customer_id varchar(16), amount decimal(12,2));
CREATE TABLE cards.credit_limits (customer_id varchar(16), credit_limit decimal(12,2));
CREATE USER 'csr_liu'@'127.0.0.1' IDENTIFIED BY 'pw';
CREATE USER 'csr_liu'@'localhost' IDENTIFIED BY 'pw';
GRANT SELECT ON cards.cardholders TO 'csr_liu'@'127.0.0.1', 'csr_liu'@'localhost';
GRANT SELECT ON cards.card_txn TO 'csr_liu'@'127.0.0.1', 'csr_liu'@'localhost';
SET GLOBAL server_audit_logging = ON;
"""
MY_TRAFFIC = [
    "SELECT customer_name FROM cardholders WHERE customer_id='K000042'",
    "SELECT h.customer_name, t.amount\n  FROM cardholders h JOIN card_txn t ON t.customer_id=h.customer_id\n"
    " WHERE h.customer_id = 'K000043' AND h.customer_name <> 'it''s, \"quoted\"'",
    "SELECT * FROM credit_limits WHERE customer_id='K000044'",
    "SELECT customer_id, mobile_phone FROM cardholders WHERE customer_id IN ('K000045','K000046')",
    "USE mysql",
]


@contextmanager
def mariadb() -> Iterator[Path]:
    """A running MariaDB with server_audit; yields its audit log file."""
    base = Path(tempfile.mkdtemp(prefix="lifemon-my-"))
    shutil.chown(base, "mysql")
    port, sock, audit = free_port(), base / "sock", base / "server_audit.log"
    _run(
        [
            "mariadb-install-db",
            "--no-defaults",
            "--user=mysql",
            f"--datadir={base / 'data'}",
            "--auth-root-authentication-method=normal",
        ]
    )
    server = subprocess.Popen(
        ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={base / 'data'}", f"--socket={sock}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={base / 'pid'}",
         "--plugin-load-add=server_audit", "--server-audit-logging=OFF",
         "--server-audit-events=CONNECT,QUERY_DML,TABLE", f"--server-audit-file-path={audit}",
         f"--log-error={base / 'err.log'}"],
    )  # fmt: skip
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        _run(["mariadb", "-S", str(sock), "-uroot"], input=MY_SETUP)
        for sql in MY_TRAFFIC:
            subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", "-ucsr_liu", "-ppw", "cards", "-e", sql],
                           capture_output=True, timeout=60)  # fmt: skip
        subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", "-ucsr_liu", "-ppw", "cards"],
                       input=b"SELECT * FROM cardholders;", capture_output=True, timeout=60)  # fmt: skip
        server.terminate()  # a stopped server has flushed and closed its audit file
        server.wait(30)
        yield audit
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(base, ignore_errors=True)


# -- OpenSSH internal-sftp ---------------------------------------------------------------------------
def _settled(lines: list[str], quiet_s: float = 0.5, limit_s: float = 20.0) -> None:
    """Until no syslog line has come for `quiet_s`: a session's last lines come after its client
    exits, later on a loaded machine than a fixed wait allowed."""
    deadline, seen, since = time.monotonic() + limit_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        if len(lines) != seen:
            seen, since = len(lines), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)


class SyslogSocket:
    """A /dev/log inside a chroot: internal-sftp logs there with syslog(3), one datagram a line
    (sshd's -e does not carry its lines)."""

    def __init__(self, path: Path, out: list[str]):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)
        self.out = out
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.out.append(data.decode("utf-8", "replace").rstrip("\n\0"))

    def close(self) -> None:
        self.sock.close()


@contextmanager
def sftp() -> Iterator[list[str]]:
    """sshd with internal-sftp, one chrooted account per recipient; uploads a file as each and
    yields the syslog lines internal-sftp wrote."""
    root = Path("/run/lifemon-sftp")  # a chroot's every parent must be root-owned and not world-writable
    root.mkdir(mode=0o755, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=root))
    os.chmod(base, 0o755)
    port, lines, sockets = free_port(), [], []
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host_key")])
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "client_key")])
    (base / "keys").mkdir()
    for account in SFTP_ACCOUNTS:
        try:
            pwd.getpwnam(account)
        except KeyError:
            _run(["useradd", "-M", "-d", "/upload", "-s", "/usr/sbin/nologin", "-p", "*", account])
        chroot = base / "chroot" / account
        (chroot / "dev").mkdir(parents=True)
        (chroot / "upload").mkdir()
        shutil.chown(chroot / "upload", account)
        shutil.copy(base / "client_key.pub", base / "keys" / account)
        sockets.append(SyslogSocket(chroot / "dev" / "log", lines))
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'keys'}/%u\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nLogLevel INFO\nSubsystem sftp internal-sftp -l INFO\n"
        f"Match User {','.join(SFTP_ACCOUNTS)}\n  ChrootDirectory {base / 'chroot'}/%u\n"
        "  ForceCommand internal-sftp -l INFO\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    _run(["/usr/sbin/sshd", "-f", str(base / "sshd_config"), "-E", str(base / "sshd.log")])
    try:
        payload = base / "batch.csv"
        for account, size in zip(SFTP_ACCOUNTS, (40_000, 24_000, 16_000), strict=True):
            payload.write_bytes(b"x" * size)
            script = f"cd /upload\nput {payload} export_{account}.csv\nls\n"
            if account == "acme_collect":
                script += f"get export_{account}.csv {base / 'back.csv'}\n"
            _run(["sftp", "-q", "-i", str(base / "client_key"), "-P", str(port), "-o", "StrictHostKeyChecking=no",
                  "-o", "UserKnownHostsFile=/dev/null", "-b", "-", f"{account}@127.0.0.1"], input=script)  # fmt: skip
        _settled(lines)
        yield lines
    finally:
        pid = base / "sshd.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), 15)
        for s in sockets:
            s.close()
        shutil.rmtree(base, ignore_errors=True)
