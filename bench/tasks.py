"""Task leases (issue 18): the share of claim votes that land on already-decided claims, for a
crowd with human think time, without leases (the server before) and with them, side by side.

    python bench/tasks.py [--validators N] [--claims N] [--rate PER_S] [--think LO HI] [--seed N]

The crowd runs through the server's own assignment and vote sequence on a simulated clock
(game_rules/queue_simulation.py): no wall-clock time is compressed, think times and lease
expiry are simulated seconds.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from game_rules.queue_simulation import QueueConfig, queue_table, run_queue
from server.config import default_rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = QueueConfig()
    parser.add_argument("--validators", type=int, default=defaults.validators)
    parser.add_argument("--claims", type=int, default=defaults.claims)
    parser.add_argument("--rate", type=float, default=defaults.claims_per_second)
    parser.add_argument("--think", type=float, nargs=2, default=defaults.think_seconds)
    parser.add_argument("--walk-away", type=float, default=defaults.walk_away)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = QueueConfig(
        validators=args.validators,
        claims=args.claims,
        claims_per_second=args.rate,
        think_seconds=(args.think[0], args.think[1]),
        walk_away=args.walk_away,
        seed=args.seed,
    )
    rules = default_rules()
    started = time.perf_counter()
    before = run_queue(replace(cfg, leases=False), rules)
    after = run_queue(cfg, rules)
    print(queue_table(before, after))
    print(
        f"({cfg.validators} validators, {cfg.claims} claims at {cfg.claims_per_second:g}/s, "
        f"think {cfg.think_seconds[0]:g}–{cfg.think_seconds[1]:g} s, "
        f"{cfg.walk_away:.0%} walk away for {cfg.away_seconds:g} s, "
        f"lease {rules.gold.lease_seconds:g} s + slack {rules.gold.lease_slack}, "
        f"seed {cfg.seed}; {time.perf_counter() - started:.1f} s)"
    )


if __name__ == "__main__":
    main()
