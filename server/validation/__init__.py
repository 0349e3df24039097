"""Validation: blind tasks, votes, settling claims, moderation, and the scores and leaderboards
they produce. The decisions are game_rules'; this package loads state and stores outcomes."""
