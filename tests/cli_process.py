"""``scynet-al`` as its own process, labelling with the analytic test simulator.

Usage: ``python -m tests.cli_process [--sleep SECONDS] [--started-dir DIR] VERB
ARGS...`` runs the command line of ``scynet-al`` (:func:`scynet_al.cli.main`, its
LocalCluster and signal handling included), except that every simulator backend is
replaced by :class:`tests.sim_doubles.AnalyticSimulator` on the pMSSM-11 space,
sleeping ``SECONDS`` per point and marking the start of each simulation in ``DIR``.
For tests that signal a real command, as a terminal does.
"""

from __future__ import annotations

import argparse
import sys

import simulators.backends
from sampler.space import pmssm11
from scynet_al.cli import main as cli_main
from tests.sim_doubles import AnalyticSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--started-dir", default=None)
    args, cli_argv = parser.parse_known_args(argv)

    def make_simulator(backend, settings=None, *, model=None):
        return AnalyticSimulator.for_space(
            pmssm11(), sleep_s=args.sleep, started_dir=args.started_dir
        )

    simulators.backends.make_simulator = make_simulator
    return cli_main(cli_argv)


if __name__ == "__main__":
    sys.exit(main())
