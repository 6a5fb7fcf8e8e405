"""A real single-node SLURM cluster for tests, with job accounting (sacct).

Five daemons run in the foreground, started here and stopped at the end: munged (authentication,
with its own key), mariadbd and slurmdbd (the accounting database that ``sacct`` reads; the
Snakemake SLURM executor polls ``sacct`` for job states), slurmctld and one slurmd, whose node
is this machine (``hostname -s``, with the CPUs and memory ``slurmd -C`` finds).

Everything lives in one folder (configuration, state, database, logs, the munge key), but for the
sockets and slurmd's spool, which need short paths (a short temporary folder); nothing is written
to /etc. Clients find the cluster through ``SLURM_CONF`` (:meth:`env`), all
but one: inside each job, the executor's job step (snakemake-executor-plugin-slurm-jobstep
0.6) drops every ``SLURM_*`` variable, SLURM_CONF included, before it calls ``srun``. So while
the cluster runs, ``/run/slurm/conf`` links to its configuration folder: where SLURM clients
look after SLURM_CONF and /etc/slurm/slurm.conf (slurmd's configless cache). The cluster
refuses to start where /etc/slurm/slurm.conf exists (this machine has a SLURM of its own) or
/run/slurm/conf is taken (:func:`conflicts`).

The settings fit a container without systemd or cgroups: processes are tracked through /proc,
tasks are not bound to CPUs, and CPUs (not memory) are the consumable resource. Ports are
chosen free, so the cluster does not collide with one already running.

    with slurm_cluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env())
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from tests.processes import stop_process_group

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "sacct", "sacctmgr")
# Debian packages: slurmctld, slurmd, slurm-client, slurmdbd, munge, mariadb-server
# (scripts/ensure_system_deps.sh --test installs them).
PROGRAMS = (*DAEMONS, *CLIENTS, "mariadb-install-db")
CLUSTER = "bargantest"
# Keep the database small: the defaults preallocate ~100 MB of InnoDB log.
MARIADB_OPTIONS = ("--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M")

# Where SLURM clients read their configuration when SLURM_CONF is not set, in this order.
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
FALLBACK_CONF_DIR = Path("/run/slurm/conf")


def conflicts() -> list[str]:
    """Why a test cluster cannot run on this machine (it has a SLURM configuration)."""
    found = []
    if DEFAULT_CONF.exists():
        found.append(f"{DEFAULT_CONF} exists (this machine's own SLURM)")
    if FALLBACK_CONF_DIR.exists():  # a dangling link (a killed test run) is not in the way
        found.append(f"{FALLBACK_CONF_DIR} exists (slurmd's configless cache, or another test)")
    return found


def missing_programs() -> list[str]:
    """The programs this helper needs that are not on PATH (daemons are often in /usr/sbin)."""
    return [name for name in PROGRAMS if shutil.which(name, path=search_path()) is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def search_path(env: Mapping[str, str] = os.environ) -> str:
    """``env``'s PATH with the folders of system daemons (/usr/sbin, /sbin) appended."""
    return os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/sbin"])


def node_line(node: str) -> str:
    """This machine as a NodeName line (``slurmd -C``: CPUs, sockets, cores, threads, memory),
    so that slurmd finds the hardware it is told about and does not drain the node."""
    slurmd = shutil.which("slurmd", path=search_path())
    out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    fields = [field for field in line.split()[1:] if not field.startswith("UpTime")]
    return f"NodeName={node} NodeAddr=127.0.0.1 {' '.join(fields)} State=UNKNOWN"


def config_text(settings: Mapping[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class SlurmCluster:
    """One node, named after ``hostname -s``, in one partition, ``main`` (the default)."""

    partition = "main"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc" / "slurm.conf"
        # Unix socket paths must stay under 108 bytes; pytest's folders can be longer. The
        # sockets, and slurmd's spool (where each job step makes one), live in a short folder.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="bargan-sockets-"))
        self.munge_socket = self._socket_dir / "munge.socket"
        self.db_socket = self._socket_dir / "mariadb.sock"
        self.spool = self._socket_dir / "spool"
        self.ports = {name: free_port() for name in ("mariadb", "slurmdbd", "ctld", "slurmd")}
        self._procs: dict[str, subprocess.Popen] = {}
        self._linked = self._made_dir = False

    # -- clients ---------------------------------------------------------------------------

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with SLURM_CONF set to this cluster
        and /usr/sbin on PATH."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = search_path(env)
        return env

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} exited {result.returncode}: {result.stderr}\n{self.logs()}"
            )
        return result

    def queue(self) -> list[dict[str, str]]:
        """Every job slurmctld holds (pending, running, or finished less than MinJobAge ago),
        as ``squeue`` lists it: id, name, state, partition, nodes, comment."""
        keys = ("id", "name", "state", "partition", "nodes", "comment")
        out = self.run("squeue", "--states=all", "--noheader", "--format=%i|%j|%T|%P|%N|%k").stdout
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines()]

    def accounting(self) -> list[dict[str, str]]:
        """Every job in the accounting database, as ``sacct`` lists it (allocations only):
        id, name, state, exit code, allocated CPUs, node list, comment."""
        keys = ("id", "name", "state", "exit_code", "cpus", "nodes", "comment")
        out = self.run(
            "sacct",
            "-X",
            "--allusers",
            "--parsable2",
            "--noheader",
            "--starttime=now-1day",
            "--format=JobIDRaw,JobName%200,State,ExitCode,AllocCPUS,NodeList,Comment%500",
        ).stdout
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines()]

    def node_state(self) -> str:
        result = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%t", check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    def logs(self) -> str:
        """The last lines of every daemon's log, for error messages."""
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            lines = path.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- configuration ---------------------------------------------------------------------

    def write_config(self) -> None:
        for name in ("etc", "state", "log", "munge", "mariadb"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        etc, log = self.root / "etc", self.root / "log"
        auth = {"AuthType": "auth/munge", "AuthInfo": f"socket={self.munge_socket}"}
        (etc / "plugstack.conf").write_text("")
        (etc / "cgroup.conf").write_text("")
        # slurmdbd reads slurmdbd.conf from SLURM_CONF's folder; it must be private.
        dbd_conf = etc / "slurmdbd.conf"
        dbd_conf.write_text(
            config_text(
                {
                    **auth,
                    "DbdHost": self.node,
                    "DbdAddr": "127.0.0.1",
                    "DbdPort": self.ports["slurmdbd"],
                    "SlurmUser": "root",
                    "DebugLevel": "info",
                    "LogFile": log / "slurmdbd.log",
                    "PidFile": self.root / "slurmdbd.pid",
                    "StorageType": "accounting_storage/mysql",
                    "StorageHost": "127.0.0.1",
                    "StoragePort": self.ports["mariadb"],
                    "StorageUser": "root",
                    "StorageLoc": "slurm_acct_db",
                }
            )
        )
        dbd_conf.chmod(0o600)
        settings = {
            "ClusterName": CLUSTER,
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": self.ports["ctld"],
            "SlurmdPort": self.ports["slurmd"],
            "SlurmUser": "root",
            "SlurmdUser": "root",
            **auth,
            "CredType": "cred/munge",
            "StateSaveLocation": self.root / "state",
            "SlurmdSpoolDir": self.spool,
            "SlurmctldPidFile": self.root / "slurmctld.pid",
            "SlurmdPidFile": self.root / "slurmd.pid",
            "SlurmctldLogFile": log / "slurmctld.log",
            "SlurmdLogFile": log / "slurmd.log",
            "SlurmctldDebug": "info",
            "SlurmdDebug": "info",
            "PlugStackConfig": etc / "plugstack.conf",
            # No systemd or cgroups in a container: track processes through /proc.
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core",
            "JobAcctGatherType": "jobacct_gather/linux",
            "AccountingStorageType": "accounting_storage/slurmdbd",
            "AccountingStorageHost": "127.0.0.1",
            "AccountingStoragePort": self.ports["slurmdbd"],
            # The munge socket for talking to slurmdbd (AuthInfo's is not used for that).
            "AccountingStoragePass": self.munge_socket,
            "AccountingStoreFlags": "job_comment",  # sacct shows the comment (rule name)
            "JobCompType": "jobcomp/none",
            "MpiDefault": "none",
            "ReturnToService": 2,
            "SchedulerType": "sched/backfill",
            # Finished jobs stay visible to squeue for 10 minutes.
            "MinJobAge": 600,
            "InactiveLimit": 0,
            "KillWait": 5,
        }
        text = config_text(settings) + node_line(self.node) + "\n"
        text += (
            f"PartitionName={self.partition} Nodes={self.node} Default=YES"
            " MaxTime=INFINITE State=UP\n"
        )
        self.conf.write_text(text)

    # -- daemons ---------------------------------------------------------------------------

    def _start(self, name: str, cmd: list[str]) -> None:
        with open(self.root / "log" / f"{name}.out", "ab") as out:
            self._procs[name] = subprocess.Popen(
                cmd,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, signalled as one in stop()
            )

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited {proc.returncode} while waiting for {what}\n{self.logs()}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(0.2)

    def _setup(self, cmd: list[str]) -> None:
        result = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"{cmd[0]} exited {result.returncode}\n{result.stdout}{result.stderr}"
            )

    def _succeeds(self, *cmd: str) -> Callable[[], bool]:
        return lambda: self.run(*cmd, check=False).returncode == 0

    def _link_fallback_conf(self) -> None:
        if found := conflicts():
            raise RuntimeError("cannot start a test SLURM cluster: " + "; ".join(found))
        if not FALLBACK_CONF_DIR.parent.is_dir():
            FALLBACK_CONF_DIR.parent.mkdir(parents=True)
            self._made_dir = True
        if FALLBACK_CONF_DIR.is_symlink():  # dangling: left by a run that was killed
            FALLBACK_CONF_DIR.unlink()
        FALLBACK_CONF_DIR.symlink_to(self.conf.parent, target_is_directory=True)
        self._linked = True

    def _unlink_fallback_conf(self) -> None:
        link = FALLBACK_CONF_DIR
        if self._linked and link.is_symlink() and link.readlink() == self.conf.parent:
            link.unlink()
        if self._made_dir:
            with contextlib.suppress(OSError):  # not empty: someone else uses it now
                FALLBACK_CONF_DIR.parent.rmdir()
        self._linked = self._made_dir = False

    def start(self) -> None:
        self.write_config()
        self._link_fallback_conf()
        munge, db = self.root / "munge", self.root / "mariadb"
        log = self.root / "log"
        self._start(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",  # as root, and with /tmp's permissions
                f"--key-file={munge / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={log / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        self._setup(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={db / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *MARIADB_OPTIONS,
            ]
        )
        self._start(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={db / 'data'}",
                f"--socket={self.db_socket}",
                "--bind-address=127.0.0.1",
                f"--port={self.ports['mariadb']}",
                "--user=root",
                f"--pid-file={db / 'mariadbd.pid'}",
                f"--log-error={log / 'mariadbd.log'}",
                *MARIADB_OPTIONS,
            ],
        )
        self._wait("munged", self.munge_socket.exists, timeout=20)
        self._wait("mariadbd", lambda: self.db_socket.exists())
        self._start("slurmdbd", ["slurmdbd", "-D"])
        self._wait("slurmdbd", self._succeeds("sacctmgr", "-n", "list", "cluster"))
        self.run("sacctmgr", "-i", "add", "cluster", CLUSTER)
        # -i: ignore saved state; every cluster starts with no jobs.
        self._start("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", self._succeeds("scontrol", "ping"))
        self._start("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.node])
        self._wait(f"node {self.node} idle", lambda: self.node_state() == "idle")

    def _jobs_active(self) -> bool:
        out = self.run(
            "squeue", "--noheader", "--states=PENDING,RUNNING,COMPLETING,CONFIGURING", check=False
        ).stdout
        return bool(out.strip())

    def stop(self) -> None:
        """Cancel every job and wait for it to end, then stop the daemons, slurmd first."""
        ctld = self._procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            self.run("scancel", "--full", f"--partition={self.partition}", check=False)
            deadline = time.monotonic() + 30
            while self._jobs_active() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in reversed(list(self._procs)):
            proc = self._procs[name]
            if proc.poll() is None:
                stop_process_group(proc)
        self._procs.clear()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._unlink_fallback_conf()


@contextlib.contextmanager
def slurm_cluster(root: Path) -> Iterator[SlurmCluster]:
    """A started cluster in ``root``; every daemon and job is stopped on leaving."""
    cluster = SlurmCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
