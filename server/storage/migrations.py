"""The database schema as an ordered list of migrations; the position in the list is the version.

Never edit a migration that has shipped: append a new one. Each is applied in its own
transaction together with the bump of `schema_version`.

Room left for the consensus phase: `claims` is the validation queue (one row per pending
claim); votes, tasks, gold answers and an append-only score-event table reference `attempts`,
`claims` and `players` from a later migration.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: players, rounds, attempts, claims
    """
    CREATE TABLE players (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL,
        name_key    TEXT NOT NULL UNIQUE,      -- casefolded name: uniqueness ignores case
        token_hash  TEXT NOT NULL UNIQUE,      -- sha256 of the secret token, never the token
        created_at  REAL NOT NULL
    );

    CREATE TABLE rounds (
        id             INTEGER PRIMARY KEY,
        number         INTEGER NOT NULL UNIQUE,
        state          TEXT NOT NULL
                       CHECK (state IN ('scheduled', 'open', 'closing', 'closed')),
        model_version  TEXT NOT NULL,
        created_at     REAL NOT NULL,
        opened_at      REAL,
        closed_at      REAL
    );
    -- At most one round is open at a time.
    CREATE UNIQUE INDEX rounds_one_open ON rounds (state) WHERE state = 'open';

    CREATE TABLE attempts (
        id             INTEGER PRIMARY KEY,
        player_id      INTEGER NOT NULL REFERENCES players (id),
        round_id       INTEGER NOT NULL REFERENCES rounds (id),
        created_at     REAL NOT NULL,
        strokes        TEXT,                   -- JSON polylines, when drawn
        png            BLOB,                   -- the uploaded PNG, when uploaded
        image          BLOB NOT NULL,          -- 28x28 float32 little-endian: what the model saw
        label          INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
        predicted      INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
        probs          TEXT NOT NULL,          -- JSON list of 10 probabilities
        model_version  TEXT NOT NULL,
        outcome        TEXT NOT NULL CHECK (outcome IN ('model_won', 'pending')),
        CHECK (strokes IS NOT NULL OR png IS NOT NULL),
        CHECK (length(image) = 3136)
    );
    CREATE INDEX attempts_round ON attempts (round_id);
    CREATE INDEX attempts_player ON attempts (player_id);

    CREATE TABLE claims (
        attempt_id  INTEGER PRIMARY KEY REFERENCES attempts (id),
        round_id    INTEGER NOT NULL REFERENCES rounds (id),
        state       TEXT NOT NULL DEFAULT 'pending',
        created_at  REAL NOT NULL,
        settled_at  REAL
    );
    CREATE INDEX claims_state ON claims (state);

    -- A submission the model got wrong is a claim until players validate it. Done here so that
    -- storing a submission stays one statement (one round trip, atomic on its own).
    CREATE TRIGGER attempts_pending_claim AFTER INSERT ON attempts WHEN NEW.outcome = 'pending'
    BEGIN
        INSERT INTO claims (attempt_id, round_id, created_at)
        VALUES (NEW.id, NEW.round_id, NEW.created_at);
    END;
    """,
]
