"""The game: players, live guesses, submissions, and rounds as a service (rules in game_rules)."""
