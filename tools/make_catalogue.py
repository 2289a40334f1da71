"""Write the package's signal-region catalogue from the shared CheckMATE reference data.

Run once by hand from the repository root (``python tools/make_catalogue.py``); the
output, ``simulators/data/lhc_signal_regions.json``, is committed and shipped as package
data, so an installed package never needs ``../shared``. Every number is copied as it
stands; names, references and descriptions follow the paper's Table 3.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "lhc_signal_regions.json"
TARGET = REPO / "simulators" / "data" / "lhc_signal_regions.json"

#: Publication of each analysis of Table 3 (arXiv number or conference/PAS note).
REFERENCES = {
    "atlas_1402_7029": "arXiv:1402.7029",
    "atlas_1403_5294": "arXiv:1403.5294",
    "atlas_conf_2013_036": "ATLAS-CONF-2013-036",
    "atlas_1308_2631": "arXiv:1308.2631",
    "atlas_1403_4853": "arXiv:1403.4853",
    "atlas_1404_2500": "arXiv:1404.2500",
    "atlas_1405_7875": "arXiv:1405.7875",
    "atlas_1407_0583": "arXiv:1407.0583",
    "atlas_1407_0608": "arXiv:1407.0608",
    "atlas_1502_01518": "arXiv:1502.01518",
    "atlas_1503_03290": "arXiv:1503.03290",
    "atlas_conf_2015_076": "ATLAS-CONF-2015-076",
    "atlas_1602_09058": "arXiv:1602.09058",
    "atlas_1605_03814": "arXiv:1605.03814",
    "atlas_conf_2015_082": "ATLAS-CONF-2015-082",
    "atlas_1604_07773": "arXiv:1604.07773",
    "atlas_conf_2016_013": "ATLAS-CONF-2016-013",
    "atlas_conf_2015_067": "ATLAS-CONF-2015-067",
    "cms_pas_sus_15_011": "CMS-PAS-SUS-15-011",
}

#: Descriptions as in Table 3.
DESCRIPTIONS = {
    "atlas_1402_7029": "3 leptons + missing ET",
    "atlas_1403_5294": "2 leptons + missing ET",
    "atlas_conf_2013_036": "4 or more leptons",
    "atlas_1308_2631": "2 b-jets + missing ET",
    "atlas_1403_4853": "2 leptons (opposite sign)",
    "atlas_1404_2500": "2 leptons (same sign) + jets",
    "atlas_1405_7875": "multiple jets + missing ET",
    "atlas_1407_0583": "1 isolated lepton + jets + missing ET",
    "atlas_1407_0608": "2 stop quarks",
    "atlas_1502_01518": "1 jet + missing ET",
    "atlas_1503_03290": "2 leptons (same flavour, opposite sign) + missing ET",
    "atlas_conf_2015_076": "1 isolated lepton + jets + missing ET",
    "atlas_1602_09058": "jets + 2 leptons (same sign) or 3 leptons",
    "atlas_1605_03814": "multiple jets + missing ET",
    "atlas_conf_2015_082": "leptonically decaying Z + jets + missing ET",
    "atlas_1604_07773": "1 jet + missing ET",
    "atlas_conf_2016_013": "multiple leptons + multiple jets",
    "atlas_conf_2015_067": "b-jets + missing ET",
    "cms_pas_sus_15_011": "2 leptons (same flavour, opposite sign) + missing ET",
}

#: Other names of the same analysis (journal versions of conference notes).
ALIASES = {
    "atlas_conf_2015_076": ["atlas_1605_04285", "arXiv:1605.04285"],
    "atlas_conf_2015_067": ["atlas_1605_09318", "arXiv:1605.09318"],
}

#: Where the reference data differ from Table 3, in words.
NOTES = {
    "atlas_conf_2015_076": "Signal-region numbers of the journal version arXiv:1605.04285 (3.2 fb^-1); Table 3 prints 13.3 fb^-1.",
    "atlas_conf_2015_067": "Signal-region numbers of the journal version arXiv:1605.09318 (8 SRs, 3.3 fb^-1); Table 3 lists the conference note with 3 SRs and 3.2 fb^-1.",
    "atlas_1403_5294": "CheckMATE implementation atlas_1403_5294_v2 with 13 SRs; Table 3 lists 9.",
    "atlas_1602_09058": "The reference data carry no background uncertainty for this analysis; the chi-square uses the background without uncertainty (pure Poisson).",
}


def convert_region(region: dict) -> dict:
    """One signal region in the package's format."""
    if "bkg_err" in region:
        error = region["bkg_err"]
    elif "bkg_errp" in region:
        error = {"up": region["bkg_errp"], "down": region["bkg_errm"]}
    else:
        error = None
    return {
        "n_obs": region["obs"],
        "n_bkg": region["bkg"],
        "bkg_error": error,
        "s95_obs": region["S95_obs"],
        "s95_exp": region["S95_exp"],
    }


def convert(source: dict) -> dict:
    """The whole catalogue in the package's format, analyses in Table 3 order."""
    analyses = {}
    for name in REFERENCES:
        entry = source["analyses"][name]
        regions = {sr: convert_region(r) for sr, r in entry["signal_regions"].items()}
        analyses[name] = {
            "sqrt_s_tev": entry["sqrt_s_tev"],
            "luminosity_fb": entry["luminosity_fb"],
            "reference": REFERENCES[name],
            "aliases": ALIASES.get(name, []),
            "checkmate_name": entry["checkmate_name"],
            "description": DESCRIPTIONS[name],
            "notes": NOTES.get(name, ""),
            "signal_regions": regions,
            "groups": [list(regions)],
        }
    return {
        "format": "scynet-al-signal-regions",
        "format_version": 1,
        "source": "ATLAS/CMS published numbers as collected in the CheckMATE 2 reference data; written by tools/make_catalogue.py",
        "analyses": analyses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    data = convert(json.loads(args.source.read_text()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    n_regions = sum(len(a["signal_regions"]) for a in data["analyses"].values())
    print(f"wrote {args.out}: {len(data['analyses'])} analyses, {n_regions} SRs")


if __name__ == "__main__":
    main()
