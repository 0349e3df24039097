"""Print the crowd-simulation table: our rules vs Dynabench (3 matching) vs majority-of-5.

    python bench/crowd.py [--seed N] [--claims N] [--rings N]

The scenarios are issue 4's (40% fakes; validators 70%/55% honest, 15% random clickers,
15%/30% sybils); see game_rules/simulation.py for the world and the policies.
"""

from __future__ import annotations

import argparse
import time

from game_rules.simulation import POLICIES, CrowdConfig, run, table
from server.config import default_rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--rings", type=int, default=1, help="independent cheater rings")
    args = parser.parse_args()
    rules = default_rules()
    started = time.perf_counter()
    rows = []
    for sybils in (0.15, 0.30):
        cfg = CrowdConfig(
            claims=args.claims,
            sybil_share=sybils,
            honest_share=0.85 - sybils,
            rings=args.rings,
            seed=args.seed,
        )
        rows += [(f"{sybils:.0%} sybils", run(policy, cfg, rules)) for policy in POLICIES]
    print(table(rows))
    print(
        f"({args.claims} claims per run, seed {args.seed}, {args.rings} ring(s), "
        f"{time.perf_counter() - started:.1f}s)"
    )


if __name__ == "__main__":
    main()
