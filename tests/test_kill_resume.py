"""Kill -9 or Ctrl-C of a running daemon, then resume: nothing lost or doubled.

The daemon runs as a real subprocess (``python -m tests.campaign_process``, or the
``scynet-al`` command line through ``python -m tests.cli_process``) on a
LocalCluster of worker processes; its process group is killed with SIGKILL, or
interrupted with SIGINT as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import os
import pty
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from scynet_al.store import CampaignStore

REPO = Path(__file__).resolve().parents[1]

CONFIG = """\
campaign:
  seed: 5
  min_validation_count: 3
  target_mean_abs_error: 0.01
  in_flight: 4
  refit_every: 10
  points_per_round: 10
  grace_period_s: 5
  budget: {max_points: MAX_POINTS, max_wall_time_hours: 1.0}
space: {model: pmssm11}
proposer: {candidate_pool: 300, min_distance: 0.01}
dask: {n_workers: 2, threads_per_worker: 1}
"""


def start_daemon(
    config: Path, store: Path, log, *, sleep: float, extra: tuple[str, ...] = ()
) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.campaign_process",
            str(config),
            str(store),
            "--sleep",
            str(sleep),
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )


def finished_records(store_path: Path) -> dict[int, tuple]:
    """Finished points by id: (status, seed, chi2 at 13 TeV, parameters)."""
    with CampaignStore.open(store_path, mode="r") as store:
        table = store.table()
    done = table["status"] != "pending"
    return {
        int(i): (str(s), int(seed), float(np.nan_to_num(c[0], nan=-1.0)), tuple(x))
        for i, s, seed, c, x in zip(
            table["id"][done],
            table["status"][done],
            table["seed"][done],
            table["chi2"][done],
            table["parameters"][done],
            strict=True,
        )
    }


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wait_for_points(store_path: Path, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store_path.exists():
            try:
                if len(finished_records(store_path)) >= n:
                    return
            except Exception:  # the store may not be complete yet; try again
                pass
        time.sleep(0.2)
    raise AssertionError(
        f"{store_path}: fewer than {n} finished points after {timeout} s"
    )


def kill_and_resume(
    tmp_path: Path, kills: int, max_points: int, seed: int, extra: tuple[str, ...] = ()
) -> None:
    config = tmp_path / "campaign.yaml"
    config.write_text(CONFIG.replace("MAX_POINTS", str(max_points)))
    store = tmp_path / "campaign.h5"
    log_path = tmp_path / "daemon.log"
    with log_path.open("ab") as log:
        seen = _kill_repeatedly(
            config, store, log, kills, max_points, random.Random(seed), extra
        )
        daemon = start_daemon(config, store, log, sleep=0.05, extra=extra)
        daemon.wait(timeout=120)
    assert daemon.returncode == 0, log_path.read_text()[-3000:]

    final = finished_records(store)
    assert {i: final[i] for i in seen} == seen
    assert sorted(final) == list(range(max_points))
    params = np.array([v[3] for v in final.values()])
    assert len(np.unique(params, axis=0)) == max_points
    with CampaignStore.open(store, mode="r") as s:
        assert s.counts()["pending"] == 0
        assert s.metrics()[-1]["stop_reason"] == "max_points"


def _kill_repeatedly(
    config, store, log, kills, max_points, rng, extra
) -> dict[int, tuple]:
    seen: dict[int, tuple] = {}
    target = 0
    for _ in range(kills):
        target += max_points // (kills + 2)
        daemon = start_daemon(config, store, log, sleep=0.05, extra=extra)
        try:
            wait_for_points(store, target, timeout=60)
            time.sleep(rng.uniform(0.0, 1.0))
        finally:
            kill_group(daemon)
        now = finished_records(store)
        assert {i: now[i] for i in seen} == seen, "a stored result changed or vanished"
        seen = now

    return seen


def test_kill_nine_then_resume(tmp_path):
    kill_and_resume(
        tmp_path, kills=3, max_points=60, seed=1, extra=("--thread-workers",)
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_kill_nine_many_times(tmp_path, seed):
    """Worker processes of a LocalCluster die with the daemon's process group."""
    kill_and_resume(tmp_path, kills=5, max_points=150, seed=seed)


def start_command(
    *args: str, sleep: float, log, started_dir: Path | None = None
) -> subprocess.Popen:
    """``scynet-al ARGS`` in a new session, labelling with the analytic simulator."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    marks = ("--started-dir", str(started_dir)) if started_dir else ()
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cli_process", "--sleep", str(sleep), *marks,
         *args, "--no-progress"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )  # fmt: skip


def test_ctrl_c_in_a_terminal_stops_the_run_cleanly_and_soon(tmp_path):
    # A terminal sends Ctrl-C's SIGINT to its whole foreground process group: the
    # daemon and the LocalCluster's worker processes. The workers must finish their
    # jobs and stay quiet; the daemon must not wait out the grace period.
    grace_s = 120
    config = tmp_path / "campaign.yaml"
    config.write_text(
        CONFIG.replace("MAX_POINTS", "16")
        .replace("grace_period_s: 5", f"grace_period_s: {grace_s}")
        .replace("refit_every: 10", "refit_every: 1000")
        + "surrogate: {ensemble_size: 1, max_epochs: 2, patience: 1}\n"
    )
    store = tmp_path / "campaign.h5"
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        daemon = start_command("run", str(config), "--store", str(store),
                               sleep=2.0, log=log)  # fmt: skip
        try:
            wait_for_points(store, 2, timeout=120)
            os.killpg(daemon.pid, signal.SIGINT)
            interrupted_at = time.monotonic()
            out, _ = daemon.communicate(timeout=grace_s + 60)
            stopped_after = time.monotonic() - interrupted_at
        finally:
            kill_group(daemon)
    err = log_path.read_text()
    seen = finished_records(store)

    assert daemon.returncode == 0, err[-3000:]
    assert "campaign stopped (interrupted)" in out
    assert err.count("SIGINT received") == 1, err[-3000:]
    for noise in ("Traceback", "KeyboardInterrupt", "cannot finish", "cancelling"):
        assert noise not in err, err[-3000:]
    assert stopped_after < grace_s / 2, err[-3000:]
    with CampaignStore.open(store, mode="r") as s:
        assert s.metrics()[-1]["stop_reason"] == "interrupted"
        assert s.counts()["pending"] > 0

    with log_path.open("w") as log:
        resumed = start_command("resume", str(store), "--json", sleep=0.0, log=log)
        out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, log_path.read_text()[-3000:]
    assert '"stop_reason": "max_points"' in out
    final = finished_records(store)
    assert {i: final[i] for i in seen} == seen
    assert sorted(final) == list(range(16))


def test_ctrl_c_does_not_wait_for_jobs_whose_workers_were_killed(tmp_path):
    # Workers that die anyway after the Ctrl-C (killed, crashed) leave jobs that
    # cannot finish: the run ends without spending the grace period on them, and
    # their points stay pending. The nanny restarts the workers meanwhile.
    grace_s = 120
    config = tmp_path / "campaign.yaml"
    config.write_text(
        CONFIG.replace("MAX_POINTS", "16")
        .replace("grace_period_s: 5", f"grace_period_s: {grace_s}")
        .replace("in_flight: 4", "in_flight: 2")
    )
    store = tmp_path / "campaign.h5"
    started = tmp_path / "started"
    started.mkdir()
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        daemon = start_command("run", str(config), "--store", str(store),
                               sleep=600.0, log=log, started_dir=started)  # fmt: skip
        try:
            wait_for_files(started, 2, timeout=120)
            workers = worker_processes(daemon.pid)
            os.killpg(daemon.pid, signal.SIGINT)
            interrupted_at = time.monotonic()
            time.sleep(0.5)  # into the drain
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            out, _ = daemon.communicate(timeout=grace_s + 60)
            stopped_after = time.monotonic() - interrupted_at
        finally:
            kill_group(daemon)
    err = log_path.read_text()

    assert len(workers) == 2
    assert daemon.returncode == 0, err[-3000:]
    assert "campaign stopped (interrupted)" in out
    assert "cannot finish" in err, err[-3000:]
    assert stopped_after < grace_s / 2, err[-3000:]
    with CampaignStore.open(store, mode="r") as s:
        counts = s.counts()
        assert s.metrics()[-1]["stop_reason"] == "interrupted"
        assert counts["pending"] == len(s) > 0, counts


def wait_for_files(directory: Path, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(list(directory.iterdir())) < n:
        assert time.monotonic() < deadline, f"fewer than {n} files in {directory}"
        time.sleep(0.1)


def worker_processes(daemon_pid: int) -> list[int]:
    """Process ids of the daemon's LocalCluster workers, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # the process ended while being looked at
            continue
        if parent == daemon_pid and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("signals", [1, 2])
def test_interrupt_once_drains_twice_exits(tmp_path, signals):
    config = tmp_path / "campaign.yaml"
    config.write_text(
        CONFIG.replace("MAX_POINTS", "1000").replace(
            "grace_period_s: 5", "grace_period_s: 30"
        )
    )
    store = tmp_path / "campaign.h5"
    with (tmp_path / "daemon.log").open("ab") as log:
        # 3 s jobs: the drain after the first signal outlasts the gap to the second.
        daemon = start_daemon(config, store, log, sleep=3.0)
        try:
            wait_for_points(store, 6, timeout=120)
            for _ in range(signals):
                os.kill(daemon.pid, signal.SIGINT)
                # Past the window in which a repeat counts as the same request.
                time.sleep(1.5)
            code = daemon.wait(timeout=60)
        finally:
            kill_group(daemon)

    with CampaignStore.open(store, mode="r") as s:
        counts = s.counts()
        rows = s.metrics()
    assert counts["ok"] >= 6
    if signals == 1:
        assert code == 0
        assert rows[-1]["stop_reason"] == "interrupted"
    else:
        assert code == 130
        assert not rows or not rows[-1].get("final")
        log_text = (tmp_path / "daemon.log").read_text()
        assert "second interrupt: exiting at once; unfinished points stay" in log_text


@pytest.mark.slow
def test_resume_command_on_a_spent_budget_stops_at_once(tmp_path, capsys):
    from scynet_al.cli import main

    config = tmp_path / "campaign.yaml"
    config.write_text(
        CONFIG.replace("MAX_POINTS", "24")
        + "surrogate: {ensemble_size: 2, max_epochs: 5, patience: 2}\n"
    )
    store = tmp_path / "campaign.h5"
    with (tmp_path / "daemon.log").open("ab") as log:
        daemon = start_daemon(config, store, log, sleep=0.0, extra=("--ensembles",))
        assert daemon.wait(timeout=120) == 0

    code = main(["resume", str(store), "--no-progress", "--json"])

    assert code == 0
    assert '"stop_reason": "max_points"' in capsys.readouterr().out
    with CampaignStore.open(store, mode="r") as s:
        kinds = [r.get("kind") for r in s.metrics()]
        assert s.counts()["pending"] == 0 and len(s) == 24
    assert kinds.count("start") == 2 and kinds.count("summary") == 2


#: Runs ``tests.cli_process`` with the pseudo-terminal on its standard streams as
#: its controlling terminal (it leads a new session, as a login shell does).
IN_A_TERMINAL = (
    "import fcntl, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "from tests.cli_process import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


class Terminal:
    """A pseudo-terminal whose screen is read in a thread until it is closed."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.screen = bytearray()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # the other side hung up
                    return

    def close(self) -> None:
        """Close the terminal window: the kernel hangs up its session leader."""
        self._closing.set()
        self._reader.join(timeout=10)
        os.close(self.master)


def test_closing_the_terminal_stops_the_run_cleanly(tmp_path):
    # Closing a terminal (or losing an SSH session) hangs up the session leader,
    # and the shell passes SIGHUP on to its job's process group: the daemon and
    # the LocalCluster's workers, which die of it. The daemon must stop as on
    # Ctrl-C although every write to the terminal now fails: exit 0, a summary
    # row and the unfinished points pending (resumed as after Ctrl-C, above).
    config = tmp_path / "campaign.yaml"
    config.write_text(
        CONFIG.replace("MAX_POINTS", "16")
        .replace("grace_period_s: 5", "grace_period_s: 120")
        .replace("refit_every: 10", "refit_every: 1000")
    )
    store = tmp_path / "campaign.h5"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), env.get("PYTHONPATH")])
    )
    terminal = Terminal()
    daemon = subprocess.Popen(
        [sys.executable, "-c", IN_A_TERMINAL, "--sleep", "1.0", "run", str(config),
         "--store", str(store)],
        cwd=REPO, env=env, stdin=terminal.slave, stdout=terminal.slave,
        stderr=terminal.slave, start_new_session=True,
    )  # fmt: skip
    os.close(terminal.slave)
    try:
        wait_for_points(store, 2, timeout=120)
        terminal.close()
        os.killpg(daemon.pid, signal.SIGHUP)
        code = daemon.wait(timeout=120)
    finally:
        kill_group(daemon)
    shown = terminal.screen.decode(errors="replace")

    assert code == 0, shown[-3000:]
    assert "campaign started" in shown and "Traceback" not in shown, shown[-3000:]
    with CampaignStore.open(store, mode="r") as s:
        assert s.metrics()[-1]["stop_reason"] == "interrupted"
        assert s.counts()["pending"] > 0
