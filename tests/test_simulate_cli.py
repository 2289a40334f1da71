"""``scynet-al simulate`` and the points CSV reader."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sampler.space import PMSSM11_NAMES, pmssm11, pmssm19
from scynet_al.cli import main
from scynet_al.errors import InputError
from scynet_al.points_io import model_of_header, read_points_csv
from tests.spheno_fixtures import (
    FAKE_SPHENO,
    all_names,
    fixtures_dir,
    point,
    spheno_masses,
)

EXIT_USER_ERROR = 2


def _write_csv(
    path: Path, names: tuple[str, ...], rows: list[dict[str, float]]
) -> Path:
    lines = [",".join(names)] + [",".join(repr(row[n]) for n in names) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fixture_csv(tmp_path: Path) -> Path:
    fixtures_dir()  # skips the test when ../shared is not beside the checkout
    return _write_csv(
        tmp_path / "points.csv", PMSSM11_NAMES, [point(n) for n in all_names()]
    )


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_builtin_spectrum_stage(fixture_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert (
        main(["simulate", "--stage", "spectrum", str(fixture_csv), "--out", str(out)])
        == 0
    )
    rows = _read_jsonl(out)
    assert [r["row"] for r in rows] == list(range(1, len(all_names()) + 1))
    by_name = dict(zip(all_names(), rows, strict=True))
    assert by_name["light_gluino"]["status"] == "ok"
    assert by_name["light_gluino"]["reason"] == ""
    assert by_name["light_higgs"]["status"] == "rejected"
    assert "m(h0)" in by_name["light_higgs"]["reason"]
    gluino = by_name["light_gluino"]["masses"]["1000021"]
    assert gluino == pytest.approx(spheno_masses("light_gluino")[1000021], rel=0.05)
    assert by_name["negative_signs"]["masses"]["1000022"] < 0.0
    assert by_name["light_gluino"]["point"] == point("light_gluino")


def test_spheno_spectrum_stage_replays_spheno(
    fixture_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["simulate", "--stage", "spectrum", "--backend", "spheno",
            "--spheno-binary", str(FAKE_SPHENO), str(fixture_csv), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    by_name = dict(zip(all_names(), _read_jsonl(out), strict=True))
    reference = spheno_masses("light_stop")
    masses = by_name["light_stop"]["masses"]
    assert masses["1000006"] == pytest.approx(reference[1000006])
    assert by_name["tachyonic_stop"]["status"] == "failed"
    assert by_name["tachyonic_stop"]["masses"] == {}
    assert by_name["light_chargino"]["reason"].startswith("m(~chi_1+) = 59.8 GeV")


def test_full_stage_runs_a_backend(fixture_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["simulate", "--stage", "full", "--backend", "spheno",
            "--spheno-binary", str(FAKE_SPHENO), str(fixture_csv), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = _read_jsonl(out)
    assert {"status", "reason", "masses", "chi2", "simulator"} <= set(rows[0])
    assert rows[0]["simulator"] == "spheno"


def test_missing_spheno_binary_is_a_user_error(
    fixture_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--backend", "spheno", "--spheno-binary", str(tmp_path / "no"),
            str(fixture_csv), "--out", str(tmp_path / "o.jsonl")]  # fmt: skip
    assert main(argv) == EXIT_USER_ERROR
    assert "not found" in capsys.readouterr().err


def test_malformed_value_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [point("light_gluino"), point("light_stop")]
    path = _write_csv(tmp_path / "p.csv", PMSSM11_NAMES, rows)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("2500.0", "lots", 1)
    path.write_text("\n".join(lines) + "\n")
    code = main(["simulate", str(path), "--out", str(tmp_path / "o.jsonl")])
    assert code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "line 3" in err and "column M3" in err and "'lots'" in err


def test_reader_reorders_columns_and_skips_blank_lines(tmp_path: Path) -> None:
    names = tuple(reversed(PMSSM11_NAMES))
    path = _write_csv(tmp_path / "p.csv", names, [point("light_gluino")])
    path.write_text(path.read_text() + "\n\n")
    X = read_points_csv(path, pmssm11())
    expected = [point("light_gluino")[n] for n in PMSSM11_NAMES]
    assert X.shape == (1, 11) and np.array_equal(X[0], expected)
    assert model_of_header(path) == "pmssm11"


@pytest.mark.parametrize(
    ("header_change", "phrase"),
    [
        (("tanb", "tan_beta"), "unknown columns ['tan_beta']"),
        (("mu", "M1"), "duplicate columns ['M1']"),
    ],
)
def test_reader_rejects_bad_headers(
    tmp_path: Path, header_change: tuple[str, str], phrase: str
) -> None:
    path = _write_csv(tmp_path / "p.csv", PMSSM11_NAMES, [point("light_gluino")])
    text = path.read_text().replace(*header_change, 1)
    path.write_text(text)
    with pytest.raises(InputError, match=r"line 1") as info:
        read_points_csv(path, pmssm11())
    assert phrase in str(info.value)
    assert "[]" not in str(info.value)  # only the kinds of trouble there are


def test_reader_checks_ranges_and_row_length(tmp_path: Path) -> None:
    bad = dict(point("light_gluino"), M3=100.0)  # inside the gap around zero
    path = _write_csv(tmp_path / "p.csv", PMSSM11_NAMES, [point("light_stop"), bad])
    with pytest.raises(InputError, match=r"line 3, column M3: 100 lies outside"):
        read_points_csv(path, pmssm11())
    assert read_points_csv(path, pmssm11(), check_ranges=False).shape == (2, 11)
    path.write_text(path.read_text() + "1,2,3\n")
    with pytest.raises(InputError, match=r"line 4: 3 values for 11 columns"):
        read_points_csv(path, pmssm11(), check_ranges=False)


def test_reader_names_missing_file_and_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_points_csv(tmp_path / "none.csv", pmssm19())
    path = tmp_path / "p.csv"
    path.write_text("M1,M2,foo\n1,2,3\n")
    with pytest.raises(InputError, match="matches no model"):
        model_of_header(path)


def test_full_stage_settings(
    fixture_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["simulate", "--stage", "full", "--backend", "spheno",
            "--setting", f"spheno_binary={FAKE_SPHENO}", "--setting", "timeout_s=30",
            str(fixture_csv), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert len(_read_jsonl(out)) == len(all_names())
    bad = [*argv[:5], "--setting", "timeout_s", *argv[9:]]
    assert main(bad) == EXIT_USER_ERROR
    assert "expected KEY=VALUE" in capsys.readouterr().err
    # The failed command left the earlier output as it was.
    assert len(_read_jsonl(out)) == len(all_names())
    spectrum = ["simulate", "--stage", "spectrum", "--setting", "timeout_s=3",
                str(fixture_csv), "--out", str(out)]  # fmt: skip
    assert main(spectrum) == EXIT_USER_ERROR
    assert "--stage full only" in capsys.readouterr().err
    assert len(_read_jsonl(out)) == len(all_names())


def test_a_point_outside_the_space_is_a_rejected_row(tmp_path: Path) -> None:
    points = tmp_path / "points.csv"
    points.write_text(
        "M1,M2,M3,mQ12,mQ3,mL12,mL3,mA,A,mu,tanb\n"
        "100,3000,900,3000,3000,3000,3000,2000,0,2000,10\n"
        "100,3000,100,3000,3000,3000,3000,2000,0,2000,10\n"  # M3 in the gap
    )
    out = tmp_path / "out.jsonl"

    assert (
        main(["simulate", "--stage", "spectrum", str(points), "--out", str(out)]) == 0
    )

    rows = _read_jsonl(out)
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"] == "rejected"
    assert rows[1]["reason"].startswith("parameter M3 = 100")


PLAIN_POINT = "100,3000,900,3000,3000,3000,3000,2000,0,2000,10\n"


@pytest.fixture
def one_point(tmp_path: Path) -> Path:
    path = tmp_path / "one.csv"
    path.write_text(",".join(PMSSM11_NAMES) + "\n" + PLAIN_POINT)
    return path


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["event_factor=-3"], "event_factor = -3: must be a finite number > 0"),
        (["event_factor=0"], "event_factor = 0: must be a finite number > 0"),
        (["min_events=1e3", "max_events=500"],
         "max_events = 500: must be a whole number >= min_events (1000)"),
    ],
)  # fmt: skip
def test_a_nonsensical_setting_is_one_line(
    one_point: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    settings: list[str],
    message: str,
) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["simulate", "--stage", "full", str(one_point), "--out", str(out)]
    for setting in settings:
        argv += ["--setting", setting]

    assert main(argv) == EXIT_USER_ERROR

    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"scynet-al simulate: error: builtin simulator: {message}"
    ]
    assert not out.exists()


@pytest.mark.parametrize("seed", ["-5", "-1", "five"])
def test_a_seed_is_a_whole_number_of_at_least_zero(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: str
) -> None:
    out = tmp_path / "out.jsonl"

    with pytest.raises(SystemExit) as info:
        main(["simulate", str(one_point), "--out", str(out), f"--seed={seed}"])

    assert info.value.code == EXIT_USER_ERROR
    assert "argument --seed: " in capsys.readouterr().err
    assert not out.exists()


def test_replay_without_its_pool_says_how_to_give_it(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--stage", "full", "--backend", "replay", str(one_point)]

    assert main([*argv, "--out", str(tmp_path / "out.jsonl")]) == EXIT_USER_ERROR

    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "scynet-al simulate: error: --backend replay needs --setting pool=FILE.h5"
    ]


def test_out_may_not_be_the_points_file(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = one_point.read_text()
    same = tmp_path / ".." / tmp_path.name / one_point.name  # another path to it

    assert main(["simulate", str(one_point), "--out", str(same)]) == EXIT_USER_ERROR

    err = capsys.readouterr().err
    assert f"--out {same} is the input file {one_point}" in err
    assert one_point.read_text() == before


OLDER_OUTPUT = '{"row": 1, "status": "ok"}\n'


def test_a_full_disk_keeps_the_older_output(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], full_disk
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(OLDER_OUTPUT)

    assert main(["simulate", str(one_point), "--out", str(out)]) == EXIT_USER_ERROR

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al simulate: error: cannot write simulation results {out}: No space"
        f" left on device; the file system holding {tmp_path} is nearly full (8,192"
        " bytes free)"
    ]
    assert out.read_text() == OLDER_OUTPUT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv", "out.jsonl"]


def test_an_interrupted_run_keeps_the_rows_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from scynet_al.commands import simulate as simulate_command

    points = tmp_path / "two.csv"
    points.write_text(",".join(PMSSM11_NAMES) + "\n" + PLAIN_POINT * 2)
    out = tmp_path / "out.jsonl"
    out.write_text(OLDER_OUTPUT)
    spectrum = simulate_command.STAGES["spectrum"]

    def interrupted_at_row_2(point, row, args, scratch):
        if row == 2:
            raise KeyboardInterrupt
        return spectrum(point, row, args, scratch)

    monkeypatch.setitem(simulate_command.STAGES, "spectrum", interrupted_at_row_2)

    assert main(["simulate", str(points), "--out", str(out)]) == 130

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al simulate: interrupted by SIGINT; wrote the 1 finished row to {out}"
    ]
    rows = _read_jsonl(out)
    assert [(r["row"], r["status"]) for r in rows] == [(1, "ok")]
    assert out.read_text().endswith("}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "two.csv"]


def test_the_signal_handlers_are_restored_after_a_run(one_point: Path, tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

    assert main(["simulate", str(one_point), "--out", str(tmp_path / "o.jsonl")]) == 0

    assert {s: signal.getsignal(s) for s in before} == before


#: Two points outside the space (M3 in its gap), rejected without running, then
#: one inside it, which runs the stage.
OUTSIDE_POINT = "100,3000,100,3000,3000,3000,3000,2000,0,2000,10\n"

#: A SPheno that marks its start in its working directory and then never ends.
ENDLESS_SPHENO = "#!/bin/sh\ntouch started\nexec sleep 600\n"


def _rejected_line(row: int) -> str:
    """The record of an :data:`OUTSIDE_POINT` in row ``row``, as worked out from
    the point and the pMSSM-11 range of M3."""
    values = [float(v) for v in OUTSIDE_POINT.split(",")]
    record = {
        "row": row,
        "point": dict(zip(PMSSM11_NAMES, values, strict=True)),
        "status": "rejected",
        "reason": "parameter M3 = 100.0 lies outside [-4000, -400] \u222a [400, 4000]",
        "masses": {},
    }
    return json.dumps(record) + "\n"


@pytest.mark.parametrize(
    ("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)]
)
def test_a_signalled_run_keeps_the_rows_finished(
    tmp_path: Path, signame: str, code: int
) -> None:
    spheno = tmp_path / "SPheno"
    spheno.write_text(ENDLESS_SPHENO)
    spheno.chmod(spheno.stat().st_mode | stat.S_IXUSR)
    points = tmp_path / "three.csv"
    points.write_text(",".join(PMSSM11_NAMES) + "\n" + OUTSIDE_POINT * 2 + PLAIN_POINT)
    out = tmp_path / "out.jsonl"
    out.write_text(OLDER_OUTPUT)
    work = tmp_path / "work"
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(repo), env.get("PYTHONPATH")])
    )
    command = subprocess.Popen(
        [sys.executable, "-m", "scynet_al.cli", "simulate", "--backend", "spheno",
         "--spheno-binary", str(spheno), "--timeout-s", "900", "--workdir", str(work),
         str(points), "--out", str(out)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        started = work / "row_000003" / "spheno" / "started"
        deadline = time.monotonic() + 120
        while not started.exists() and command.poll() is None:
            assert time.monotonic() < deadline, "row 3 never started"
            time.sleep(0.05)
        command.send_signal(getattr(signal, signame))
        stdout, stderr = command.communicate(timeout=120)
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
            command.wait()

    assert (command.returncode, stdout) == (code, "")
    assert stderr.splitlines() == [
        f"scynet-al simulate: interrupted by {signame}; wrote the 2 finished rows"
        f" to {out}"
    ]
    assert out.read_text(encoding="ascii") == _rejected_line(1) + _rejected_line(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "SPheno", "out.jsonl", "three.csv", "work",
    ]  # fmt: skip


@pytest.mark.parametrize("timeout", ["-3", "0", "nan", "inf", "soon"])
def test_a_timeout_is_a_finite_number_of_seconds_above_zero(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    out = tmp_path / "out.jsonl"

    with pytest.raises(SystemExit) as info:
        main(["simulate", str(one_point), "--out", str(out), f"--timeout-s={timeout}"])

    assert info.value.code == EXIT_USER_ERROR
    reason = (
        f"{timeout!r} is not a number"
        if timeout == "soon"
        else f"{timeout!r} is not a time limit; give a finite number of seconds > 0"
    )
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"scynet-al simulate: error: argument --timeout-s: {reason}"
    )
    assert not out.exists()


def _zip(path: Path, entries: list[str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name in entries:
            archive.writestr(f"archive/{name}", b"")


@pytest.mark.parametrize(
    ("make", "called"),
    [
        (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(56)), "a campaign store"),
        (lambda p: _zip(p, ["data.pkl", "version"]), "a checkpoint"),
        (lambda p: _zip(p, ["archive_format", "data.pkl"]), "an exported pt2 model"),
    ],
    ids=["store", "checkpoint", "pt2"],
)  # fmt: skip
def test_out_may_not_be_a_campaign_file(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], make, called
) -> None:
    victim = tmp_path / "victim.h5"
    make(victim)
    before = victim.read_bytes()

    code = main(["simulate", str(one_point), "--out", str(victim)])

    assert code == EXIT_USER_ERROR
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al simulate: error: --out {victim} is {called}, which writing would"
        " destroy; give another file name"
    ]
    assert victim.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv", "victim.h5"]


def test_an_older_jsonl_is_replaced(one_point: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(OLDER_OUTPUT * 50)

    assert main(["simulate", str(one_point), "--out", str(out)]) == 0

    assert [r["row"] for r in _read_jsonl(out)] == [1]


def test_out_through_a_link_writes_its_target(one_point: Path, tmp_path: Path):
    target = tmp_path / "results.jsonl"
    target.write_text(OLDER_OUTPUT)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target.name)

    assert main(["simulate", str(one_point), "--out", str(link)]) == 0

    assert link.is_symlink()
    assert [r["row"] for r in _read_jsonl(target)] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "latest.jsonl", "one.csv", "results.jsonl",
    ]  # fmt: skip


def test_out_to_a_fifo_streams_the_rows(one_point: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(
        target=lambda: received.append(fifo.read_text()), daemon=True
    )
    reader.start()

    assert main(["simulate", str(one_point), "--out", str(fifo)]) == 0

    reader.join(timeout=30)
    [text] = received
    assert [json.loads(line)["row"] for line in text.splitlines()] == [1]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv", "rows.fifo"]


def test_out_may_not_be_a_directory(
    one_point: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "results"
    directory.mkdir()

    code = main(["simulate", str(one_point), "--out", str(directory)])

    assert code == EXIT_USER_ERROR
    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al simulate: error: --out {directory} is a directory; give a file name"
    ]
    assert list(directory.iterdir()) == []


@pytest.mark.parametrize(
    ("header", "model", "named"),
    [
        (["id", *PMSSM11_NAMES], None, "column ['id']"),
        ([*PMSSM11_NAMES, "note", "id"], None, "columns ['id', 'note']"),
        (["id", *PMSSM11_NAMES], "pmssm11", "column ['id']"),
    ],
)
def test_other_columns_are_named_to_drop(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    header: list[str],
    model: str | None,
    named: str,
) -> None:
    values = dict(zip(PMSSM11_NAMES, PLAIN_POINT.strip().split(","), strict=True))
    row = [values.get(name, "p1") for name in header]
    points = tmp_path / "ids.csv"
    points.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    out = tmp_path / "out.jsonl"
    argv = ["simulate", str(points), "--out", str(out)]

    assert main(argv + (["--model", model] if model else [])) == EXIT_USER_ERROR

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al simulate: error: {points}: line 1 (header): simulate takes the"
        f" parameter columns of pmssm11 only; drop the {named} (predict keeps such"
        " columns)"
    ]
    assert not out.exists()


def test_a_misspelt_parameter_beside_an_id_is_still_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "typo.csv"
    header = ["id", "M_1", *PMSSM11_NAMES[1:]]
    points.write_text(",".join(header) + "\n" + ",".join(["p1"] + ["100"] * 11) + "\n")

    assert main(["simulate", str(points), "--out", str(tmp_path / "o.jsonl")]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"scynet-al simulate: error: {points}: header matches no model; closest is"
        " pmssm11 with unknown columns ['M_1', 'id'] and missing columns ['M1']"
    ]
