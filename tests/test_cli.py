"""Tests of the ``scynet-al`` command line: verbs, logging and error reporting."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from sampler.errors import SpaceError
from sampler.space import pmssm11
from scynet_al import cli, commands
from scynet_al.errors import ConfigError
from scynet_al.logs import configure_logging, log_level
from scynet_al.store import CampaignStore

REPO_ROOT = Path(__file__).resolve().parents[1]
ALL_VERBS = ["run", "resume", "status", "plot", "predict", "export", "simulate"]


@pytest.fixture
def ghost(monkeypatch):
    """A verb ``ghost`` whose module raises what the test puts in ``ghost.error``."""
    module = types.ModuleType("scynet_al.commands.ghost")
    module.error = None

    def add_arguments(parser):
        parser.add_argument("value")

    def main(args):
        if module.error is not None:
            raise module.error
        print(f"ghost {args.value}")
        return 0

    module.add_arguments, module.main = add_arguments, main
    monkeypatch.setitem(commands.VERBS, "ghost", "a verb for tests")
    monkeypatch.setitem(sys.modules, "scynet_al.commands.ghost", module)
    return module


def test_help_lists_every_verb_without_torch_or_dask():
    code = (
        "import sys\nfrom scynet_al.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'dask', 'distributed'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    for verb in ALL_VERBS:
        assert f"    {verb} " in done.stdout
    assert done.stdout.strip().endswith("[]")


def test_console_script_help():
    done = subprocess.run(
        ["scynet-al", "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0
    assert "status" in done.stdout


def test_registry_holds_the_project_verbs():
    assert list(commands.VERBS) == ALL_VERBS


def test_missing_verb_module_answers_not_yet_available(monkeypatch, capsys):
    monkeypatch.setitem(commands.VERBS, "nothing", "a verb without a module")

    code = cli.main(["nothing", "--some", "args"])

    assert code == 2
    assert (
        capsys.readouterr().err
        == "scynet-al nothing: not yet available in this version\n"
    )


def test_verb_runs_with_its_arguments(ghost, capsys):
    assert cli.main(["ghost", "hello"]) == 0
    assert capsys.readouterr().out == "ghost hello\n"


@pytest.mark.parametrize(
    "error",
    [
        ConfigError(
            "c.yaml: campaign.seed = -1: Input should be greater than or equal to 0"
        ),
        SpaceError(
            "point 0: parameter M3 = 0.0 lies outside [-4000, -400] ∪ [400, 4000]"
        ),
        ConfigError("a message\nover two lines"),
    ],
)
def test_user_errors_give_one_line_and_exit_2(ghost, capsys, error):
    ghost.error = error

    code = cli.main(["ghost", "x"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("scynet-al ghost: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_bugs_keep_their_traceback(ghost):
    ghost.error = RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["ghost", "x"])


def test_no_verb_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "VERB" in capsys.readouterr().err


def test_unknown_verb_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["ghost", "x"], logging.INFO),
        (["-v", "ghost", "x"], logging.DEBUG),
        (["ghost", "x", "-v"], logging.DEBUG),
        (["--log-level", "warning", "ghost", "x"], logging.WARNING),
        (["ghost", "--log-level", "ERROR", "x"], logging.ERROR),
    ],
)
def test_logging_options_before_or_after_the_verb(ghost, argv, level):
    assert cli.main(argv) == 0
    assert logging.getLogger("scynet_al").level == level


def test_bad_log_level_is_a_usage_error(ghost):
    with pytest.raises(SystemExit) as info:
        cli.main(["--log-level", "LOUD", "ghost", "x"])
    assert info.value.code == 2


def test_configure_logging_twice_keeps_one_handler():
    configure_logging(logging.INFO)
    configure_logging(logging.DEBUG)

    ours = [
        h for h in logging.getLogger().handlers if getattr(h, "_scynet_al_cli", False)
    ]
    assert len(ours) == 1


class _HungUpTerminal:
    """A stream whose writes fail as a hung-up terminal's do (EIO)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def write(self, text):
        raise self.error

    def flush(self):
        pass


@pytest.mark.parametrize(
    ("error", "reported"),
    [(OSError(5, "Input/output error"), False), (ValueError("a bug"), True)],
)
def test_the_terminal_handler_drops_records_a_closed_terminal_refuses(
    tmp_path, capsys, error, reported
):
    from scynet_al.logs import TerminalHandler

    configure_logging(logging.INFO, log_file=tmp_path / "run.log")
    (terminal,) = [
        h for h in logging.getLogger().handlers if type(h) is TerminalHandler
    ]
    terminal.setStream(_HungUpTerminal(error))

    logging.getLogger("scynet_al.campaign").warning("SIGHUP received")

    assert ("--- Logging error ---" in capsys.readouterr().err) is reported
    assert "SIGHUP received" in (tmp_path / "run.log").read_text()


def test_log_level_choice():
    assert log_level() == logging.INFO
    assert log_level(verbose=2) == logging.DEBUG
    assert log_level(verbose=1, level="error") == logging.ERROR
    with pytest.raises(ValueError, match="unknown log level"):
        log_level(level="chatty")


def test_broken_config_leaves_an_existing_store_untouched(tmp_path, capsys):
    store_path = tmp_path / "campaign.h5"
    with CampaignStore.create(
        store_path,
        config_text="x: 1\n",
        space=pmssm11(),
        energies=[13],
        analyses={13: ["a"]},
    ) as store:
        store.add_pending(pmssm11().from_unit(np.full((2, 11), 0.5)), "prior", 0)
    before = (store_path.read_bytes(), store_path.stat().st_mtime_ns)
    broken = REPO_ROOT / "tests" / "data" / "configs" / "broken.yaml"

    code = cli.main(["run", str(broken), "--store", str(store_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    if commands.load_command("run") is not None:
        assert f"{broken}: campaign.budget.max_points = -400" in err
    assert (store_path.read_bytes(), store_path.stat().st_mtime_ns) == before


def test_a_misspelt_simulator_setting_names_the_config_file(tmp_path, capsys):
    text = (REPO_ROOT / "configs" / "quickstart.yaml").read_text()
    config = tmp_path / "typo.yaml"
    config.write_text(text.replace("\n    max_events:", "\n    max_event:", 1))
    store_path = tmp_path / "new.h5"

    assert cli.main(["run", str(config), "--store", str(store_path)]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al run: error: {config}: simulator.settings: unknown key(s)"
        " ['max_event'] for backend 'builtin' (max_event: a misspelling of"
        " max_events?)"
    ]
    assert not store_path.exists()


def test_broken_config_creates_no_store(tmp_path, capsys):
    store_path = tmp_path / "new.h5"
    broken = REPO_ROOT / "tests" / "data" / "configs" / "unknown_key.yaml"

    assert cli.main(["run", str(broken), "--store", str(store_path)]) == 2
    assert (
        "campaign.sed" in capsys.readouterr().err
        or commands.load_command("run") is None
    )
    assert not store_path.exists()


def test_a_config_that_changes_the_campaign_is_refused_on_its_store(tmp_path, capsys):
    quickstart = (REPO_ROOT / "configs" / "quickstart.yaml").read_text()
    store_path = tmp_path / "campaign.h5"
    with CampaignStore.create(
        store_path,
        config_text=quickstart,
        space=pmssm11(),
        energies=[13],
        analyses={13: ["a"]},
    ) as store:
        store.add_pending(pmssm11().from_unit(np.full((2, 11), 0.5)), "prior", 0)
    before = (store_path.read_bytes(), store_path.stat().st_mtime_ns)
    reseeded = tmp_path / "reseeded.yaml"
    reseeded.write_text(quickstart.replace("  seed: 1 ", "  seed: 7 ", 1))

    code = cli.main(["run", str(reseeded), "--store", str(store_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"{reseeded}: campaign.seed (stored 1, here 7) not as in the campaign stored"
        " in" in err
    )
    assert (store_path.read_bytes(), store_path.stat().st_mtime_ns) == before

    # Validation points must keep coming from one prior.
    uniform = tmp_path / "uniform.yaml"
    uniform.write_text(quickstart.replace("prior: gaussian", "prior: uniform", 1))
    assert cli.main(["run", str(uniform), "--store", str(store_path)]) == 2
    assert (
        "prior (stored 'gaussian', here 'uniform') not as in the campaign stored in"
        in capsys.readouterr().err
    )
    assert (store_path.read_bytes(), store_path.stat().st_mtime_ns) == before


def test_opening_a_store_to_continue_it_records_no_config_yet(tmp_path):
    # The campaign records a new config once its start has succeeded (see
    # test_campaign); opening the store for it must leave it as it was, so that a
    # start failing later does not hand its config to the next resume.
    from scynet_al.commands.run import open_or_create_store
    from scynet_al.config import load_config

    quickstart = (REPO_ROOT / "configs" / "quickstart.yaml").read_text()
    store_path = tmp_path / "campaign.h5"
    CampaignStore.create(
        store_path, config_text=quickstart, space=pmssm11(), energies=[13],
        analyses={13: ["a"]},
    ).close()  # fmt: skip
    bigger = tmp_path / "bigger.yaml"
    bigger.write_text(quickstart.replace("max_points: 500 ", "max_points: 900 ", 1))
    assert bigger.read_text() != quickstart

    open_or_create_store(load_config(bigger), store_path, simulator=None).close()

    with CampaignStore.open(store_path, mode="r") as store:
        assert store.config_text == quickstart
        assert store.metrics() == []


def test_a_closed_stdout_ends_the_command_quietly(tmp_path):
    store_path = tmp_path / "campaign.h5"
    CampaignStore.create(
        store_path, config_text="campaign: {}\nspace: {model: pmssm11}\n",
        space=pmssm11(), energies=[13], analyses={13: ["a"]},
    ).close()  # fmt: skip
    argv = [sys.executable, "-m", "scynet_al.cli", "status", str(store_path)]

    # As `scynet-al status campaign.h5 | head -0`: the reader is gone at once.
    process = subprocess.Popen(
        argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()

    assert stderr == b""
    assert process.wait(timeout=120) == 128 + 13


def test_a_broken_pipe_elsewhere_is_still_reported(ghost, capsys):
    ghost.error = BrokenPipeError(32, "Broken pipe")

    assert cli.main(["ghost", "x"]) == 2

    assert capsys.readouterr().err == "scynet-al ghost: error: [Errno 32] Broken pipe\n"


def test_a_new_store_gets_its_directory(tmp_path):
    from scynet_al.commands.run import open_or_create_store
    from scynet_al.config import parse_config
    from tests.sim_doubles import AnalyticSimulator

    config = parse_config("campaign: {seed: 1e3}\nspace: {model: pmssm11}\n")
    store_path = tmp_path / "new" / "dir" / "campaign.h5"
    simulator = AnalyticSimulator.for_space(pmssm11())

    open_or_create_store(config, store_path, simulator).close()

    with CampaignStore.open(store_path, mode="r") as store:
        assert store.campaign_seed == 1000
