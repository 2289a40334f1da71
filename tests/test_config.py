"""Tests of the campaign config: the shipped configs load, every bad input is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sampler.regions import ChiSquareRegions
from scynet_al.config import Config, load_config, parse_config, read_yaml
from scynet_al.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "data" / "configs"
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def test_three_configs_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"quickstart.yaml", "pmssm11_13tev.yaml", "pmssm19_light_stop.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path)

    assert isinstance(config, Config)
    assert config.text == path.read_text()
    assert config.source == str(path)
    assert len(config.hash) == 64


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_make_their_campaign_parts(path):
    from scynet_al.campaign import EnsembleSurrogates, _make_simulator, preflight

    config = load_config(path)
    simulator = _make_simulator(config)
    EnsembleSurrogates(config.surrogate)  # refuses a surrogate campaigns cannot fit
    preflight(config, simulator)

    # The simulator reads the points of the config's space: a pMSSM-19 point
    # given to a pMSSM-11 chain fails for want of the parameter A.
    assert getattr(simulator, "model", config.space.model) == config.space.model


def test_quickstart_is_small_and_local():
    config = load_config(ROOT / "configs" / "quickstart.yaml")

    assert config.simulator.backend == "builtin"
    assert config.dask.cluster is None and config.dask.scheduler_address is None
    assert config.dask.n_workers == 2
    assert config.campaign.energies_tev == (13,)
    budget = config.campaign.budget
    assert 100 <= budget.max_points <= 1000
    assert budget.max_wall_time_hours <= 0.25
    assert budget.max_points // config.campaign.refit_every >= 3


def test_light_stop_config_is_pmssm19_with_ordering():
    config = load_config(ROOT / "configs" / "pmssm19_light_stop.yaml")

    assert config.space.model == "pmssm19"
    assert config.space.ordering == "light_stop"
    space = config.build_space()
    assert space.dim == 19
    assert space.intervals["M3"] == ((-3000.0, -400.0), (400.0, 3000.0))
    assert space.intervals["M1"] == ((-4000.0, 4000.0),)


def test_paper_config_has_both_energies_and_table1():
    config = load_config(ROOT / "configs" / "pmssm11_13tev.yaml")

    assert config.campaign.energies_tev == (8, 13)
    assert config.prior == "gaussian"
    space = config.build_space()
    assert space.intervals["mu"] == ((-5000.0, -100.0), (100.0, 5000.0))
    # Centred on the paper's 8 TeV zero-signal peak (about 40), the regions are
    # the paper's Table 4 ranges.
    assert config.regions.build(8, zero_chi2=40.0).edges == (
        0.0, 38.0, 42.0, 70.0, 95.0, 100.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("unknown_key.yaml", "campaign.sed", "= 3"),
        ("wrong_type.yaml", "campaign.budget.max_points", "'many'"),
        ("negative_budget.yaml", "campaign.budget.max_wall_time_hours", "-2.5"),
        ("broken.yaml", "campaign.budget.max_points", "-400"),
        ("inverted_range.yaml", "space.ranges.tanb", "[60.0, 1.0]"),
        ("empty_range.yaml", "space.ranges.M1", "[]"),
        ("unknown_parameter.yaml", "space.ranges.mE12", "mE12"),
        ("negative_fraction.yaml", "proposer.fractions.local", "-0.1"),
    ],
)
def test_broken_config_names_file_key_and_value(name, key, value):
    path = BROKEN / name

    with pytest.raises(ConfigError) as info:
        load_config(path)

    message = str(info.value)
    assert message.startswith(f"{path}: {key}")
    assert value in message
    assert "\n" not in message


@pytest.mark.parametrize("hours", ["0", "0.0", "-1"])
def test_a_wall_time_budget_of_zero_or_less_is_refused(hours):
    text = f"campaign: {{budget: {{max_wall_time_hours: {hours}}}}}\nspace: {{}}\n"

    with pytest.raises(ConfigError) as info:
        parse_config(text, source="c.yaml")

    assert str(info.value) == (
        f"c.yaml: campaign.budget.max_wall_time_hours = {yaml.safe_load(hours)!r}:"
        " give a positive number of hours, or null for no limit"
    )


@pytest.mark.parametrize(("hours", "expected"), [("null", None), ("2", 2.0)])
def test_a_wall_time_budget_is_positive_hours_or_null(hours, expected):
    text = f"campaign: {{budget: {{max_wall_time_hours: {hours}}}}}\nspace: {{}}\n"

    budget = parse_config(text).campaign.budget

    assert budget.max_wall_time_hours == expected
    assert parse_config("campaign: {}\nspace: {}\n").campaign.budget == (
        budget.model_copy(update={"max_wall_time_hours": 0.25})
    )


def test_misspelt_section_is_named_without_its_contents(tmp_path):
    # A whole section under a misspelt name: the missing section it was meant to
    # be is suggested, and the hundreds of characters of its contents are left out.
    text = (ROOT / "configs" / "quickstart.yaml").read_text()
    path = tmp_path / "typo.yaml"
    path.write_text(text.replace("\ncampaign:", "\ncampaing:", 1))

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert str(info.value) == (
        f"{path}: campaing: unknown key (a misspelling of campaign?)"
    )


@pytest.mark.parametrize(
    ("right", "wrong", "meant"),
    [
        ("\nsurrogate:", "\nsurogate:", "surogate: unknown key (a misspelling of"
         " surrogate?)"),
        ("\n  max_epochs:", "\n  max_epoch:", "surrogate.max_epoch = 200: unknown"
         " key (a misspelling of surrogate.max_epochs?)"),
    ],
)  # fmt: skip
def test_a_misspelt_optional_key_is_suggested_too(tmp_path, right, wrong, meant):
    # Optional sections and keys are not missing when misspelt (they have
    # defaults), so the suggestion comes from the keys the section takes.
    text = (ROOT / "configs" / "quickstart.yaml").read_text()
    assert text.count(right) == 1
    path = tmp_path / "typo.yaml"
    path.write_text(text.replace(right, wrong))

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert str(info.value) == f"{path}: {meant}"


def test_other_problems_are_named_too(tmp_path):
    text = (ROOT / "configs" / "quickstart.yaml").read_text()
    path = tmp_path / "two.yaml"
    text = text.replace("\n  in_flight:", "\n  in_fligt:", 1)
    path.write_text(text.replace("\n  seed: 1 ", "\n  seed: one ", 1))

    with pytest.raises(ConfigError) as info:
        load_config(path)

    message = str(info.value)
    assert message.startswith(
        f"{path}: campaign.in_fligt = 4: unknown key (a misspelling of "
        "campaign.in_flight?) (also "
    )
    assert "campaign.seed: " in message and "\n" not in message


def test_not_yaml_names_file_and_line():
    path = BROKEN / "not_yaml.yaml"

    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        load_config(path)


def test_a_binary_file_given_as_config_is_named_as_such(tmp_path):
    path = tmp_path / "figure.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG file's first bytes
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: not a text file (byte 0x89 at offset 0 is not UTF-8); a config is"
        " a YAML text file"
    )


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


MINIMAL = "campaign: {name: t}\nspace: {model: pmssm11}\n"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("prior: flat\n", "prior"),
        ("simulator: {backend: pythia}\n", "simulator.backend"),
        ("surrogate: {ensemble_size: 0}\n", "surrogate.ensemble_size"),
        ("surrogate: {bootstrap: 1}\n", "surrogate.bootstrap"),
        ("proposer: {validation_share: 1.0}\n", "proposer.validation_share"),
        ("regions: {}\n", "regions"),
        ("regions: {paper: true, centre_on_catalogue: true}\n", "regions"),
        (
            "dask: {scheduler_address: 'tcp://h:1', cluster: {kind: slurm}}\n",
            "dask.cluster",
        ),
        ("dask: {cluster: {kind: lsf}}\n", "dask.cluster.kind"),
        ("dask: {cluster: {kind: slurm, jobs: -1}}\n", "dask.cluster.jobs"),
        ("prior: uniform\nprior: gaussian\n", None),
    ],
)
def test_bad_sections_are_refused(extra, key):
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + extra, source="x.yaml")

    message = str(info.value)
    assert message.startswith("x.yaml: ")
    if key is None:
        assert "duplicate key 'prior'" in message
    else:
        assert message.startswith(f"x.yaml: {key}")


@pytest.mark.parametrize(
    ("campaign", "key"),
    [
        ("{energies_tev: []}", "campaign.energies_tev"),
        ("{energies_tev: [13, 13]}", "campaign.energies_tev"),
        ("{energies_tev: [7]}", "regions.paper"),
        ("{seed: 1.5}", "campaign.seed"),
        ("{refit_every: 0}", "campaign.refit_every"),
        ("{max_retries: -1}", "campaign.max_retries"),
        ("{job_timeout_s: 0}", "campaign.job_timeout_s"),
        ("{budget: {max_points: '400'}}", "campaign.budget.max_points"),
    ],
)
def test_bad_campaign_values_are_refused(campaign, key):
    text = f"campaign: {campaign}\nspace: {{model: pmssm11}}\n"

    with pytest.raises(ConfigError, match=rf"^x\.yaml: {key}"):
        parse_config(text, source="x.yaml")


@pytest.mark.parametrize("value", ["0", "-3", "five", "'5'", "2.5", "true", "[5]"])
def test_keep_checkpoints_must_be_a_positive_whole_number_or_null(value):
    text = f"campaign: {{keep_checkpoints: {value}}}\nspace: {{model: pmssm11}}\n"

    with pytest.raises(ConfigError) as info:
        parse_config(text, source="x.yaml")

    message = str(info.value)
    assert message.startswith("x.yaml: campaign.keep_checkpoints = ")
    assert message.endswith("or null to keep every checkpoint")


@pytest.mark.parametrize(
    ("campaign", "kept"),
    [("{}", 5), ("{keep_checkpoints: null}", None), ("{keep_checkpoints: 1}", 1)],
)
def test_keep_checkpoints_default_null_and_one(campaign, kept):
    text = f"campaign: {campaign}\nspace: {{model: pmssm11}}\n"

    assert parse_config(text).campaign.keep_checkpoints == kept


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_spell_out_checkpoint_retention(path):
    text = path.read_text()
    lines = [line for line in text.splitlines() if "keep_checkpoints:" in line]

    assert "keep_checkpoints" in yaml.safe_load(text)["campaign"]
    assert len(lines) == 1 and "#" in lines[0], "the key needs its comment"


def test_missing_section_is_named():
    with pytest.raises(ConfigError, match=r"^x\.yaml: space: required key is missing"):
        parse_config("campaign: {name: t}\n", source="x.yaml")


def test_overlapping_ranges_are_refused():
    text = "campaign: {}\nspace: {model: pmssm11, ranges: {M3: [[100, 300], [200, 400]]}}\n"

    with pytest.raises(ConfigError, match="M3: ranges overlap at 200"):
        parse_config(text, source="x.yaml")


def test_range_shorthand_and_override():
    text = "campaign: {}\nspace: {model: pmssm11, ranges: {M1: [-2000, 2000]}}\n"

    space = parse_config(text).build_space()

    assert space.intervals["M1"] == ((-2000.0, 2000.0),)
    assert space.intervals["M2"] == ((100.0, 4000.0),)


def test_explicit_regions_per_energy():
    text = (
        "campaign: {energies_tev: [13]}\nspace: {model: pmssm11}\n"
        "regions: {13: {I: [0, 50], zero: [50, 57], II: [57, 70], III: [70, 95], cap: [95, 100]}}\n"
    )

    regions = parse_config(text).regions.build(13)

    assert regions == ChiSquareRegions((0.0, 50.0, 57.0, 70.0, 95.0, 100.0))


def test_explicit_regions_must_cover_every_energy():
    text = (
        "campaign: {energies_tev: [8, 13]}\nspace: {model: pmssm11}\n"
        "regions: {13: {I: [0, 50], zero: [50, 57], II: [57, 70], III: [70, 95], cap: [95, 100]}}\n"
    )

    with pytest.raises(ConfigError, match="no regions given for 8 TeV"):
        parse_config(text)


def test_centred_regions_need_the_zero_signal_chi2():
    config = parse_config(MINIMAL + "regions: {centre_on_catalogue: true}\n")

    with pytest.raises(ConfigError):
        config.regions.build(13)
    assert config.regions.build(13, zero_chi2=30.0).edges[1:3] == (28.0, 32.0)


def test_hash_ignores_comments_order_and_spelled_defaults():
    a = parse_config(MINIMAL)
    b = parse_config(
        "# a comment\nspace: {model: pmssm11}\ncampaign: {name: t, seed: 0}\nprior: uniform\n"
    )
    c = parse_config(MINIMAL.replace("name: t", "name: u"))

    assert a.hash == b.hash
    assert a.hash != c.hash
    assert a.text != b.text


def test_config_is_frozen():
    config = parse_config(MINIMAL)

    with pytest.raises(Exception, match="frozen"):
        config.campaign.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e3", 1000.0), ("1.0e9", 1e9), ("1.5e+3", 1500.0), ("2E-4", 0.0002),
     ("-3e2", -300.0), (".5e1", 5.0), ("1.e3", 1000.0), ("10", 10), ("1_000", 1000),
     ("0.25", 0.25), ("e3", "e3"), ("1e", "1e"), ("'1e3'", "1e3"), ("1e3x", "1e3x")],
)  # fmt: skip
def test_numbers_with_an_exponent_are_floats(text, value):
    read = read_yaml(f"x: {text}\n")["x"]

    assert read == value and type(read) is type(value)
    # PyYAML's own safe loader keeps reading YAML 1.1 (no global change).
    assert yaml.safe_load("x: 1e3\n")["x"] == "1e3"


@pytest.mark.parametrize(
    ("campaign", "key", "value"),
    [
        ("{budget: {max_points: 1e3}}", ("budget", "max_points"), 1000),
        ("{budget: {max_points: 19000.0}}", ("budget", "max_points"), 19000),
        ("{seed: 2E1}", ("seed",), 20),
        ("{energies_tev: [1.3e1, 8.0]}", ("energies_tev",), (13, 8)),
        ("{keep_checkpoints: 5.0}", ("keep_checkpoints",), 5),
        ("{target_mean_abs_error: 5e-1}", ("target_mean_abs_error",), 0.5),
        ("{job_timeout_s: 3.6e3}", ("job_timeout_s",), 3600.0),
    ],
)
def test_integer_keys_take_whole_floats(campaign, key, value):
    regions = "regions: {paper: true}\n"
    config = parse_config(f"campaign: {campaign}\nspace: {{model: pmssm11}}\n{regions}")

    read = config.campaign
    for part in key:
        read = getattr(read, part)
    assert read == value
    assert type(read) is type(value)


@pytest.mark.parametrize("value", ["1000.5", "1e-3", "'1e3'", "true", ".inf"])
def test_integer_keys_refuse_fractions_strings_and_bools(value):
    text = f"campaign: {{budget: {{max_points: {value}}}}}\nspace: {{model: pmssm11}}\n"

    with pytest.raises(ConfigError, match=r"^x\.yaml: campaign\.budget\.max_points = "):
        parse_config(text, source="x.yaml")


def test_a_config_with_exponents_hashes_like_its_integers():
    base = "campaign: {{seed: {s}, budget: {{max_points: {n}}}}}\nspace: {{model: pmssm11}}\n"

    written = parse_config(base.format(s="1e1", n="4e2"))
    plain = parse_config(base.format(s="10", n="400"))

    assert written.hash == plain.hash
