"""Jet clustering with fastjet on whole batches of events, and kinematic helpers.

Particles and jets are awkward arrays of records with Cartesian fields ``px``,
``py``, ``pz``, ``e`` (GeV), one list per event. fastjet's awkward interface
clusters every event of a batch in one call.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from simulators.events import capture_stdout

#: Anti-kt radius of the ATLAS and CMS searches used here.
JET_RADIUS = 0.4


def with_kinematics(particles: ak.Array) -> ak.Array:
    """Add ``pt``, ``eta``, ``phi`` and ``m`` fields (GeV, rad) to Cartesian records."""
    pt = np.hypot(particles.px, particles.py)
    safe_pt = ak.where(pt > 0.0, pt, 1e-9)
    mass2 = particles.e**2 - particles.px**2 - particles.py**2 - particles.pz**2
    fields = {name: particles[name] for name in ak.fields(particles)}
    fields.update(
        pt=pt,
        eta=np.arcsinh(particles.pz / safe_pt),
        phi=np.arctan2(particles.py, particles.px),
        m=np.sqrt(np.maximum(mass2, 0.0)),
    )
    return ak.zip(fields)


def sorted_by_pt(objects: ak.Array) -> ak.Array:
    """Objects of each event in decreasing transverse momentum."""
    return objects[ak.argsort(objects.pt, axis=1, ascending=False)]


def delta_phi(phi_a, phi_b):
    """Azimuthal difference folded into [0, π]."""
    return np.abs((phi_a - phi_b + np.pi) % (2.0 * np.pi) - np.pi)


def delta_r_matrix(first: ak.Array, second: ak.Array) -> ak.Array:
    """ΔR between every object of ``first`` and every one of ``second``, per event.

    Returns:
        Nested awkward array ``[event][i][j]``.
    """
    pairs = ak.cartesian({"a": first, "b": second}, axis=1, nested=True)
    d_eta = pairs.a.eta - pairs.b.eta
    d_phi = delta_phi(pairs.a.phi, pairs.b.phi)
    return np.sqrt(d_eta**2 + d_phi**2)


def cluster(
    particles: ak.Array, radius: float = JET_RADIUS, min_pt: float = 0.0
) -> ak.Array:
    """Cluster each event's particles into anti-kt jets.

    Args:
        particles: ``[event][particle]`` records with ``px``, ``py``, ``pz``, ``e``.
        radius: Anti-kt radius parameter R.
        min_pt: Smallest jet transverse momentum kept (GeV).

    Returns:
        ``[event][jet]`` records with Cartesian and ``pt``/``eta``/``phi``/``m``
        fields, sorted by decreasing pT.
    """
    import fastjet

    if len(particles) == 0:
        return with_kinematics(
            ak.zip({name: ak.Array([[0.0]])[:0] for name in ("px", "py", "pz", "e")})
        )
    inputs = ak.zip(
        {
            "px": ak.values_astype(particles.px, np.float64),
            "py": ak.values_astype(particles.py, np.float64),
            "pz": ak.values_astype(particles.pz, np.float64),
            "E": ak.values_astype(particles.e, np.float64),
        }
    )
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    found: list[ak.Array] = []
    # fastjet prints its banner on the C++ standard output at first use.
    capture_stdout(
        lambda: found.append(
            fastjet.ClusterSequence(inputs, definition).inclusive_jets(min_pt=min_pt)
        )
    )
    raw = found[0]
    jets = ak.zip({"px": raw.px, "py": raw.py, "pz": raw.pz, "e": raw.E})
    return sorted_by_pt(with_kinematics(jets))
