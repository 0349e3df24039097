"""The game's rules as pure Python: no I/O, no asyncio, no torch. Same inputs, same outputs.

The server feeds these functions what it stored and stores what they decide; every state object
is a small dataclass of plain numbers and strings (JSON / database-row friendly).

- `settings`     every tunable, one frozen `RuleSettings`; defaults in `defaults.toml`
- `answers`      the 11 answers (digits 0–9 and 10 = "not a digit"), parsing the protocol's form
- `reliability`  what a vote is worth: gold-only accuracy and confusion, collusion defences
- `consensus`    one claim's posterior over the 11 answers, updated per vote; outcomes; whether
                 a submission fooled the model
- `validation`   one vote, one settlement, one gold answer: every record they change (the
                 server and the simulation both run these)
- `moderation`   what banning, quarantining or reinstating a player means for their claims
- `assignment`   which blind task a validator gets next (claims and unannounced gold)
- `leases`       how many validators may hold a task on one claim at once (votes it may need)
- `scoring`      points as a fold over stored events; per-player stats
- `leaderboard`  unique ranks (earlier achievement wins ties), top N, "you are #N of M"
- `rounds`       the round state machine, where closing goes, and the retrain trigger
- `simulation`   a seeded crowd (fakes, clickers, sybils) to measure the rules against baselines
- `queue_simulation`  a crowd with think time on a simulated clock: votes wasted on decided claims
"""
