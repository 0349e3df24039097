"""The database schema as an ordered list of migrations; the position in the list is the version.

Never edit a migration that has shipped: append a new one. Each is applied in its own
transaction together with the bump of `schema_version`. Every migration is written twice, once
for SQLite (`SQLITE`) and once for PostgreSQL (`POSTGRES`): the same tables, columns,
constraints and triggers, each in its own types and trigger syntax. A test compares the two.

`claims` is the validation queue (one row per claim; its `state` is the consensus outcome).
Migration 2 adds what consensus needs: tasks, votes, gold, the rules' reliability records and the
append-only `score_events` every score is folded from (server/storage/consensus.py).
"""

from __future__ import annotations

SQLITE: list[str] = [
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
    # 2: consensus — player status, reliability records, claim consensus, tasks, votes, gold,
    #    score events (the rules' state objects are stored as their plain fields or JSON)
    """
    ALTER TABLE players ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'quarantined', 'banned'));

    -- claims.state: pending, verified, rejected_model_right, rejected_not_digit, relabelled,
    -- disputed (game_rules.consensus.Outcome).
    ALTER TABLE claims ADD COLUMN consensus TEXT;     -- Claim.to_dict() JSON, from the first vote
    ALTER TABLE claims ADD COLUMN label INTEGER;      -- the settled answer (10 = not a digit)
    ALTER TABLE claims ADD COLUMN votes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE claims ADD COLUMN by_admin INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX claims_queue ON claims (state, votes, created_at);

    CREATE TABLE voters (                             -- game_rules.reliability.Voter (no status)
        player_id  INTEGER PRIMARY KEY REFERENCES players (id),
        record     TEXT NOT NULL
    );
    CREATE TABLE drawers (                            -- game_rules.reliability.Drawer
        player_id  INTEGER PRIMARY KEY REFERENCES players (id),
        settled    INTEGER NOT NULL,
        verified   INTEGER NOT NULL
    );
    CREATE TABLE pairs (                              -- game_rules.reliability.Pair
        drawer_id  INTEGER NOT NULL REFERENCES players (id),
        voter_id   INTEGER NOT NULL REFERENCES players (id),
        votes      INTEGER NOT NULL,
        agreed     INTEGER NOT NULL,
        PRIMARY KEY (drawer_id, voter_id)
    );

    -- Gold: MNIST test digits (their 28x28 PNG here) and claims settled with high confidence.
    CREATE TABLE gold (
        id           INTEGER PRIMARY KEY,
        mnist_index  INTEGER UNIQUE,
        attempt_id   INTEGER UNIQUE REFERENCES attempts (id),
        truth        INTEGER NOT NULL CHECK (truth BETWEEN 0 AND 10),
        png          BLOB,
        created_at   REAL NOT NULL,
        CHECK ((mnist_index IS NULL) != (attempt_id IS NULL)),
        CHECK (attempt_id IS NOT NULL OR png IS NOT NULL)
    );

    -- A task is issued to one player under a random id; it is either a claim or a gold item.
    CREATE TABLE tasks (
        id           TEXT PRIMARY KEY,
        player_id    INTEGER NOT NULL REFERENCES players (id),
        attempt_id   INTEGER REFERENCES claims (attempt_id),
        gold_id      INTEGER REFERENCES gold (id),
        issued_at    REAL NOT NULL,
        answered_at  REAL,
        CHECK ((attempt_id IS NULL) != (gold_id IS NULL))
    );
    CREATE INDEX tasks_unanswered ON tasks (player_id) WHERE answered_at IS NULL;

    CREATE TABLE votes (
        id          INTEGER PRIMARY KEY,
        attempt_id  INTEGER NOT NULL REFERENCES claims (attempt_id),
        voter_id    INTEGER NOT NULL REFERENCES players (id),
        task_id     TEXT NOT NULL REFERENCES tasks (id),
        answer      INTEGER NOT NULL CHECK (answer BETWEEN 0 AND 10),
        counted     INTEGER NOT NULL,                 -- when cast; a ban can void it later
        created_at  REAL NOT NULL,
        UNIQUE (attempt_id, voter_id)
    );
    CREATE INDEX votes_voter ON votes (voter_id);

    CREATE TABLE gold_answers (
        gold_id     INTEGER NOT NULL REFERENCES gold (id),
        player_id   INTEGER NOT NULL REFERENCES players (id),
        task_id     TEXT NOT NULL REFERENCES tasks (id),
        answer      INTEGER NOT NULL CHECK (answer BETWEEN 0 AND 10),
        created_at  REAL NOT NULL,
        PRIMARY KEY (gold_id, player_id)
    );

    -- Append-only: every score is a fold over these rows (game_rules.scoring), in seq order.
    CREATE TABLE score_events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL CHECK (kind IN ('attempt', 'claim_settled', 'gold_answered')),
        round_id    INTEGER NOT NULL REFERENCES rounds (id),
        body        TEXT NOT NULL,                    -- the event's other fields, JSON
        created_at  REAL NOT NULL
    );
    INSERT INTO score_events (kind, round_id, body, created_at)
    SELECT 'attempt', round_id,
           json_object('player_id', player_id, 'label', label, 'model_label', predicted),
           created_at
    FROM attempts ORDER BY id;
    -- Like the claim trigger: storing a submission stays one statement.
    CREATE TRIGGER attempts_score_event AFTER INSERT ON attempts
    BEGIN
        INSERT INTO score_events (kind, round_id, body, created_at)
        VALUES ('attempt', NEW.round_id,
                json_object('player_id', NEW.player_id, 'label', NEW.label,
                            'model_label', NEW.predicted),
                NEW.created_at);
    END;
    """,
    # 3: the model registry and the training jobs (server/serving/model_store.py,
    #    server/learning/jobs/queue.py). Whether a model serves or is retired follows from the
    #    rounds bound to it, so it is not stored twice.
    """
    CREATE TABLE models (
        version      TEXT PRIMARY KEY,          -- v1, v2, ...
        file         TEXT NOT NULL,             -- the .onnx file, relative to the data directory
        sha256       TEXT NOT NULL,
        parent       TEXT,                      -- the version it was fine-tuned from
        training     TEXT NOT NULL,             -- JSON data counts
        gate         TEXT NOT NULL,             -- JSON gate verdict (server/learning/gate.py)
        accepted     INTEGER NOT NULL,          -- 1: may serve (gate passed, or bootstrap)
        mnist_accuracy  REAL NOT NULL,
        created_at   REAL NOT NULL
    );

    CREATE TABLE training_jobs (
        id           INTEGER PRIMARY KEY,
        state        TEXT NOT NULL
                     CHECK (state IN ('running', 'passed', 'rejected', 'failed', 'cancelled')),
        trigger      TEXT NOT NULL CHECK (trigger IN ('admin', 'automatic')),
        parent       TEXT,
        version      TEXT,                      -- the candidate, once one was built
        verified_seen INTEGER NOT NULL,         -- verified drawings in the database at launch
        examples     TEXT NOT NULL,             -- JSON counts: train, heldout
        reason       TEXT,
        started_at   REAL NOT NULL,
        finished_at  REAL
    );
    -- At most one job runs at a time.
    CREATE UNIQUE INDEX training_jobs_one_running ON training_jobs (state) WHERE state = 'running';
    """,
    # 4: the trainer as its own worker (server/learning/jobs/worker.py). Jobs can wait in a queue
    #    (one queued-or-running job at a time), carry a heartbeat, live progress, a cancel
    #    request, whether to open the next round, and which worker took them; models carry their
    #    files so a server or trainer on another machine can fetch them
    #    (ModelStore.fetch_model_file). SQLite cannot change a CHECK constraint: the jobs table is
    #    rebuilt, the standard way.
    """
    ALTER TABLE models ADD COLUMN onnx BLOB;          -- the .onnx file
    ALTER TABLE models ADD COLUMN card TEXT;          -- the model card, JSON
    ALTER TABLE models ADD COLUMN weights BLOB;       -- the torch weights (.pt), to fine-tune from

    CREATE TABLE training_jobs_new (
        id           INTEGER PRIMARY KEY,
        state        TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'passed', 'rejected', 'failed',
                                      'cancelled')),
        trigger      TEXT NOT NULL CHECK (trigger IN ('admin', 'automatic')),
        parent       TEXT,
        version      TEXT,
        verified_seen INTEGER NOT NULL,
        examples     TEXT NOT NULL,
        reason       TEXT,
        open_next    INTEGER NOT NULL DEFAULT 1,  -- open the next round if the candidate passes
        queued_at    REAL NOT NULL,
        started_at   REAL,                      -- when a trainer took it
        finished_at  REAL,
        worker       TEXT,                      -- who took it: host:pid
        heartbeat_at REAL,                      -- the trainer's last sign of life
        progress     TEXT,                      -- JSON: epoch, epochs, step, steps, loss, eta
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        opened_round INTEGER                    -- the round the candidate opened
    );
    INSERT INTO training_jobs_new (id, state, trigger, parent, version, verified_seen, examples,
                                   reason, queued_at, started_at, finished_at)
    SELECT id, state, trigger, parent, version, verified_seen, examples, reason, started_at,
           started_at, finished_at
    FROM training_jobs;
    DROP TABLE training_jobs;
    ALTER TABLE training_jobs_new RENAME TO training_jobs;
    -- At most one job is queued or running at a time.
    CREATE UNIQUE INDEX training_jobs_one_active ON training_jobs ((state IN ('queued', 'running')))
        WHERE state IN ('queued', 'running');
    """,
    # 5: the size of a training job (epochs, limits, gate floor, held-out share) travels with
    # it, so a trainer worker trains what the server that queued it asked for.
    """
    ALTER TABLE training_jobs ADD COLUMN recipe TEXT;
    """,
    # 6: submissions are idempotent on the client's request id (issue 12): a resend within the
    # window finds its attempt here, stored in the same transaction as the attempt itself.
    """
    CREATE TABLE submission_requests (
        player_id   INTEGER NOT NULL REFERENCES players (id),
        request     TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        attempt_id  INTEGER NOT NULL REFERENCES attempts (id),
        created_at  REAL NOT NULL,
        PRIMARY KEY (player_id, request, fingerprint)
    );
    """,
    # 7 (trust, issue 11): the crowd's confirmations per drawer (the collusion graph), and what
    # the served model reads on each gold item (hard gold exposes model oracles).
    """
    ALTER TABLE drawers ADD COLUMN votes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE drawers ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE drawers ADD COLUMN refuted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE gold ADD COLUMN model_label INTEGER CHECK (model_label BETWEEN 0 AND 9);
    """,
    # 8: task leases (issue 18) — the fewest votes a pending claim may still need (NULL before its
    # first vote; game_rules/leases.py), and the open tasks per claim, counted as its leases.
    """
    ALTER TABLE claims ADD COLUMN needed INTEGER;
    CREATE INDEX tasks_open_claim ON tasks (attempt_id, issued_at) WHERE answered_at IS NULL;
    """,
    # 9: challenges (issue 15): prompts an admin attaches to a round, each met at most once per
    # player (by a verified claim); a met prompt's bonus is a `challenge_met` score event.
    # SQLite cannot change score_events' CHECK on `kind`: the table is rebuilt, the standard way
    # (its trigger dropped first and made again, unchanged, after).
    """
    CREATE TABLE challenges (
        id           INTEGER PRIMARY KEY,
        round_id     INTEGER NOT NULL REFERENCES rounds (id),
        label        INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
        model_label  INTEGER CHECK (model_label BETWEEN 0 AND 9),
        bonus        INTEGER NOT NULL CHECK (bonus > 0),
        created_at   REAL NOT NULL
    );
    CREATE INDEX challenges_by_round ON challenges (round_id);
    CREATE TABLE challenges_met (
        challenge_id INTEGER NOT NULL REFERENCES challenges (id),
        player_id    INTEGER NOT NULL REFERENCES players (id),
        attempt_id   INTEGER NOT NULL REFERENCES attempts (id),
        created_at   REAL NOT NULL,
        PRIMARY KEY (challenge_id, player_id)
    );
    DROP TRIGGER attempts_score_event;
    CREATE TABLE score_events_new (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL
                    CHECK (kind IN ('attempt', 'claim_settled', 'gold_answered', 'challenge_met')),
        round_id    INTEGER NOT NULL REFERENCES rounds (id),
        body        TEXT NOT NULL,
        created_at  REAL NOT NULL
    );
    INSERT INTO score_events_new (seq, kind, round_id, body, created_at)
        SELECT seq, kind, round_id, body, created_at FROM score_events;
    DROP TABLE score_events;
    ALTER TABLE score_events_new RENAME TO score_events;
    CREATE TRIGGER attempts_score_event AFTER INSERT ON attempts
    BEGIN
        INSERT INTO score_events (kind, round_id, body, created_at)
        VALUES ('attempt', NEW.round_id,
                json_object('player_id', NEW.player_id, 'label', NEW.label,
                            'model_label', NEW.predicted),
                NEW.created_at);
    END;
    """,
]

POSTGRES: list[str] = [
    # 1: players, rounds, attempts, claims
    """
    CREATE TABLE players (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name        TEXT NOT NULL,
        name_key    TEXT NOT NULL UNIQUE,
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  DOUBLE PRECISION NOT NULL
    );

    CREATE TABLE rounds (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        number         INTEGER NOT NULL UNIQUE,
        state          TEXT NOT NULL
                       CHECK (state IN ('scheduled', 'open', 'closing', 'closed')),
        model_version  TEXT NOT NULL,
        created_at     DOUBLE PRECISION NOT NULL,
        opened_at      DOUBLE PRECISION,
        closed_at      DOUBLE PRECISION
    );
    CREATE UNIQUE INDEX rounds_one_open ON rounds (state) WHERE state = 'open';

    CREATE TABLE attempts (
        id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        player_id      BIGINT NOT NULL REFERENCES players (id),
        round_id       BIGINT NOT NULL REFERENCES rounds (id),
        created_at     DOUBLE PRECISION NOT NULL,
        strokes        TEXT,
        png            BYTEA,
        image          BYTEA NOT NULL,
        label          INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
        predicted      INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
        probs          TEXT NOT NULL,
        model_version  TEXT NOT NULL,
        outcome        TEXT NOT NULL CHECK (outcome IN ('model_won', 'pending')),
        CHECK (strokes IS NOT NULL OR png IS NOT NULL),
        CHECK (octet_length(image) = 3136)
    );
    CREATE INDEX attempts_round ON attempts (round_id);
    CREATE INDEX attempts_player ON attempts (player_id);

    CREATE TABLE claims (
        attempt_id  BIGINT PRIMARY KEY REFERENCES attempts (id),
        round_id    BIGINT NOT NULL REFERENCES rounds (id),
        state       TEXT NOT NULL DEFAULT 'pending',
        created_at  DOUBLE PRECISION NOT NULL,
        settled_at  DOUBLE PRECISION
    );
    CREATE INDEX claims_state ON claims (state);

    CREATE FUNCTION attempts_pending_claim() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO claims (attempt_id, round_id, created_at)
        VALUES (NEW.id, NEW.round_id, NEW.created_at);
        RETURN NULL;
    END $$;
    CREATE TRIGGER attempts_pending_claim AFTER INSERT ON attempts
    FOR EACH ROW WHEN (NEW.outcome = 'pending') EXECUTE FUNCTION attempts_pending_claim();
    """,
    # 2: consensus
    """
    ALTER TABLE players ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'quarantined', 'banned'));

    ALTER TABLE claims ADD COLUMN consensus TEXT;
    ALTER TABLE claims ADD COLUMN label INTEGER;
    ALTER TABLE claims ADD COLUMN votes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE claims ADD COLUMN by_admin INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX claims_queue ON claims (state, votes, created_at);

    CREATE TABLE voters (
        player_id  BIGINT PRIMARY KEY REFERENCES players (id),
        record     TEXT NOT NULL
    );
    CREATE TABLE drawers (
        player_id  BIGINT PRIMARY KEY REFERENCES players (id),
        settled    INTEGER NOT NULL,
        verified   INTEGER NOT NULL
    );
    CREATE TABLE pairs (
        drawer_id  BIGINT NOT NULL REFERENCES players (id),
        voter_id   BIGINT NOT NULL REFERENCES players (id),
        votes      INTEGER NOT NULL,
        agreed     INTEGER NOT NULL,
        PRIMARY KEY (drawer_id, voter_id)
    );

    CREATE TABLE gold (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        mnist_index  INTEGER UNIQUE,
        attempt_id   BIGINT UNIQUE REFERENCES attempts (id),
        truth        INTEGER NOT NULL CHECK (truth BETWEEN 0 AND 10),
        png          BYTEA,
        created_at   DOUBLE PRECISION NOT NULL,
        CHECK ((mnist_index IS NULL) != (attempt_id IS NULL)),
        CHECK (attempt_id IS NOT NULL OR png IS NOT NULL)
    );

    CREATE TABLE tasks (
        id           TEXT PRIMARY KEY,
        player_id    BIGINT NOT NULL REFERENCES players (id),
        attempt_id   BIGINT REFERENCES claims (attempt_id),
        gold_id      BIGINT REFERENCES gold (id),
        issued_at    DOUBLE PRECISION NOT NULL,
        answered_at  DOUBLE PRECISION,
        CHECK ((attempt_id IS NULL) != (gold_id IS NULL))
    );
    CREATE INDEX tasks_unanswered ON tasks (player_id) WHERE answered_at IS NULL;

    CREATE TABLE votes (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        attempt_id  BIGINT NOT NULL REFERENCES claims (attempt_id),
        voter_id    BIGINT NOT NULL REFERENCES players (id),
        task_id     TEXT NOT NULL REFERENCES tasks (id),
        answer      INTEGER NOT NULL CHECK (answer BETWEEN 0 AND 10),
        counted     INTEGER NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL,
        UNIQUE (attempt_id, voter_id)
    );
    CREATE INDEX votes_voter ON votes (voter_id);

    CREATE TABLE gold_answers (
        gold_id     BIGINT NOT NULL REFERENCES gold (id),
        player_id   BIGINT NOT NULL REFERENCES players (id),
        task_id     TEXT NOT NULL REFERENCES tasks (id),
        answer      INTEGER NOT NULL CHECK (answer BETWEEN 0 AND 10),
        created_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (gold_id, player_id)
    );

    -- seq order is commit order because every write transaction holds one advisory lock
    -- (server/storage/postgres.py).
    CREATE TABLE score_events (
        seq         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('attempt', 'claim_settled', 'gold_answered')),
        round_id    BIGINT NOT NULL REFERENCES rounds (id),
        body        TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL
    );
    INSERT INTO score_events (kind, round_id, body, created_at)
    SELECT 'attempt', round_id,
           json_build_object('player_id', player_id, 'label', label,
                             'model_label', predicted)::text,
           created_at
    FROM attempts ORDER BY id;
    CREATE FUNCTION attempts_score_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO score_events (kind, round_id, body, created_at)
        VALUES ('attempt', NEW.round_id,
                json_build_object('player_id', NEW.player_id, 'label', NEW.label,
                                  'model_label', NEW.predicted)::text,
                NEW.created_at);
        RETURN NULL;
    END $$;
    CREATE TRIGGER attempts_score_event AFTER INSERT ON attempts
    FOR EACH ROW EXECUTE FUNCTION attempts_score_event();
    """,
    # 3: the model registry and the training jobs
    """
    CREATE TABLE models (
        version      TEXT PRIMARY KEY,
        file         TEXT NOT NULL,
        sha256       TEXT NOT NULL,
        parent       TEXT,
        training     TEXT NOT NULL,
        gate         TEXT NOT NULL,
        accepted     INTEGER NOT NULL,
        mnist_accuracy  DOUBLE PRECISION NOT NULL,
        created_at   DOUBLE PRECISION NOT NULL
    );

    CREATE TABLE training_jobs (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        state        TEXT NOT NULL
                     CHECK (state IN ('running', 'passed', 'rejected', 'failed', 'cancelled')),
        trigger      TEXT NOT NULL CHECK (trigger IN ('admin', 'automatic')),
        parent       TEXT,
        version      TEXT,
        verified_seen INTEGER NOT NULL,
        examples     TEXT NOT NULL,
        reason       TEXT,
        started_at   DOUBLE PRECISION NOT NULL,
        finished_at  DOUBLE PRECISION
    );
    CREATE UNIQUE INDEX training_jobs_one_running ON training_jobs (state) WHERE state = 'running';
    """,
    # 4: the trainer as its own worker (rebuilt like SQLite's, so both keep one column order)
    """
    ALTER TABLE models ADD COLUMN onnx BYTEA;
    ALTER TABLE models ADD COLUMN card TEXT;
    ALTER TABLE models ADD COLUMN weights BYTEA;

    CREATE TABLE training_jobs_new (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        state        TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'passed', 'rejected', 'failed',
                                      'cancelled')),
        trigger      TEXT NOT NULL CHECK (trigger IN ('admin', 'automatic')),
        parent       TEXT,
        version      TEXT,
        verified_seen INTEGER NOT NULL,
        examples     TEXT NOT NULL,
        reason       TEXT,
        open_next    INTEGER NOT NULL DEFAULT 1,
        queued_at    DOUBLE PRECISION NOT NULL,
        started_at   DOUBLE PRECISION,
        finished_at  DOUBLE PRECISION,
        worker       TEXT,
        heartbeat_at DOUBLE PRECISION,
        progress     TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        opened_round INTEGER
    );
    INSERT INTO training_jobs_new (id, state, trigger, parent, version, verified_seen, examples,
                                   reason, queued_at, started_at, finished_at)
    SELECT id, state, trigger, parent, version, verified_seen, examples, reason, started_at,
           started_at, finished_at
    FROM training_jobs;
    SELECT setval(pg_get_serial_sequence('training_jobs_new', 'id'),
                  coalesce(max(id), 0) + 1, false)
    FROM training_jobs_new;
    DROP TABLE training_jobs;
    ALTER TABLE training_jobs_new RENAME TO training_jobs;
    ALTER TABLE training_jobs RENAME CONSTRAINT training_jobs_new_pkey TO training_jobs_pkey;
    CREATE UNIQUE INDEX training_jobs_one_active ON training_jobs ((state IN ('queued', 'running')))
        WHERE state IN ('queued', 'running');
    """,
    # 5: a training job's recipe
    """
    ALTER TABLE training_jobs ADD COLUMN recipe TEXT;
    """,
    # 6: submissions are idempotent on the client's request id
    """
    CREATE TABLE submission_requests (
        player_id   BIGINT NOT NULL REFERENCES players (id),
        request     TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        attempt_id  BIGINT NOT NULL REFERENCES attempts (id),
        created_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (player_id, request, fingerprint)
    );
    """,
    # 7 (trust, issue 11): the crowd's confirmations per drawer (the collusion graph), and what
    # the served model reads on each gold item (hard gold exposes model oracles).
    """
    ALTER TABLE drawers ADD COLUMN votes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE drawers ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE drawers ADD COLUMN refuted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE gold ADD COLUMN model_label INTEGER CHECK (model_label BETWEEN 0 AND 9);
    """,
    # 8: task leases (issue 18) — the fewest votes a pending claim may still need (NULL before its
    # first vote; game_rules/leases.py), and the open tasks per claim, counted as its leases.
    """
    ALTER TABLE claims ADD COLUMN needed INTEGER;
    CREATE INDEX tasks_open_claim ON tasks (attempt_id, issued_at) WHERE answered_at IS NULL;
    """,
    # 9: challenges (issue 15)
    """
    CREATE TABLE challenges (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        round_id     BIGINT NOT NULL REFERENCES rounds (id),
        label        INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
        model_label  INTEGER CHECK (model_label BETWEEN 0 AND 9),
        bonus        INTEGER NOT NULL CHECK (bonus > 0),
        created_at   DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX challenges_by_round ON challenges (round_id);
    CREATE TABLE challenges_met (
        challenge_id BIGINT NOT NULL REFERENCES challenges (id),
        player_id    BIGINT NOT NULL REFERENCES players (id),
        attempt_id   BIGINT NOT NULL REFERENCES attempts (id),
        created_at   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (challenge_id, player_id)
    );
    -- score_events rebuilt like SQLite's, so both keep one shape (its trigger made again).
    DROP TRIGGER attempts_score_event ON attempts;
    CREATE TABLE score_events_new (
        seq         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        kind        TEXT NOT NULL
                    CHECK (kind IN ('attempt', 'claim_settled', 'gold_answered', 'challenge_met')),
        round_id    BIGINT NOT NULL REFERENCES rounds (id),
        body        TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL
    );
    INSERT INTO score_events_new (seq, kind, round_id, body, created_at)
        SELECT seq, kind, round_id, body, created_at FROM score_events;
    SELECT setval(pg_get_serial_sequence('score_events_new', 'seq'),
                  coalesce(max(seq), 0) + 1, false)
    FROM score_events_new;
    DROP TABLE score_events;
    ALTER TABLE score_events_new RENAME TO score_events;
    ALTER TABLE score_events RENAME CONSTRAINT score_events_new_pkey TO score_events_pkey;
    CREATE TRIGGER attempts_score_event AFTER INSERT ON attempts
    FOR EACH ROW EXECUTE FUNCTION attempts_score_event();
    """,
]

MIGRATIONS = {"sqlite": SQLITE, "postgresql": POSTGRES}
