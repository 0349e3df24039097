"""Print the crowd-simulation table: our rules vs Dynabench (3 matching) vs majority-of-5.

    python bench/crowd.py [--seed N] [--claims N] [--rings N]

The scenarios are issue 11's (40% fakes; colluders at 15/30/50%, model-oracle bots, an account
farm making fresh accounts per fake claim, sleepers that collude after a while); see
game_rules/simulation.py for the world and the policies. Our policy runs the server's own
vote/settle sequence (game_rules/validation.py).
"""

from __future__ import annotations

import argparse
import time

from game_rules.simulation import standard_table
from server.config import default_rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--rings", type=int, default=1, help="independent cheater rings")
    args = parser.parse_args()
    started = time.perf_counter()
    text, _ = standard_table(default_rules(), args.seed, args.claims, args.rings)
    print(text)
    print(
        f"({args.claims} claims per run, seed {args.seed}, {args.rings} ring(s), "
        f"{time.perf_counter() - started:.1f}s)"
    )


if __name__ == "__main__":
    main()
