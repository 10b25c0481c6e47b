//! Schema migrations, applied in order and recorded in SQLite's `user_version`.

pub const MIGRATIONS: &[&str] = &[
    // 1: images, their layers, tags and repo digests.
    r#"
    CREATE TABLE images (
        id              TEXT PRIMARY KEY,      -- config digest, docker's image ID
        manifest_digest TEXT NOT NULL,
        manifest        BLOB NOT NULL,
        manifest_type   TEXT NOT NULL,
        config          BLOB NOT NULL,
        created         TEXT,                  -- from the config, RFC 3339
        os              TEXT NOT NULL,
        architecture    TEXT NOT NULL,
        variant         TEXT,
        added_at        INTEGER NOT NULL       -- unix seconds
    );
    CREATE TABLE layers (
        chain_id TEXT PRIMARY KEY,
        diff_id  TEXT NOT NULL,
        size     INTEGER NOT NULL              -- bytes of unpacked content
    );
    CREATE TABLE image_layers (
        image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        chain_id    TEXT NOT NULL REFERENCES layers(chain_id),
        blob_digest TEXT NOT NULL,
        blob_size   INTEGER NOT NULL,
        media_type  TEXT NOT NULL,
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_chain ON image_layers(chain_id);
    CREATE TABLE tags (
        name     TEXT PRIMARY KEY,             -- registry/repository:tag
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE repo_digests (
        name     TEXT PRIMARY KEY,             -- registry/repository@sha256:...
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX repo_digests_image ON repo_digests(image_id);
    "#,
    // 2: containers. An image a container uses cannot be deleted (no cascade).
    r#"
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,          -- 64 hex digits
        name        TEXT NOT NULL UNIQUE,
        image_id    TEXT NOT NULL REFERENCES images(id),
        image_name  TEXT NOT NULL,             -- as the user gave it
        created_at  INTEGER NOT NULL,          -- unix seconds
        config      TEXT NOT NULL,             -- JSON: what the container was created with
        state       TEXT NOT NULL,             -- created | running | exited
        pid         INTEGER,
        exit_code   INTEGER,
        started_at  TEXT,
        finished_at TEXT
    );
    CREATE INDEX containers_image ON containers(image_id);
    "#,
    // 3: the container lifecycle. `pid` is the monitor's pid (liveness); `init_pid` the
    // container's init as docker reports it. `stopped_by_user`: a `stop`/`kill` was
    // asked for, so the restart policy must not bring the container back.
    r#"
    ALTER TABLE containers RENAME COLUMN pid TO monitor_pid;
    ALTER TABLE containers ADD COLUMN init_pid INTEGER;
    ALTER TABLE containers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE containers ADD COLUMN oom_killed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE containers ADD COLUMN stopped_by_user INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE containers ADD COLUMN health TEXT;
    ALTER TABLE containers ADD COLUMN error TEXT;
    "#,
];
