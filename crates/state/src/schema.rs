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
    // 4: networks, the networks each container is configured for (endpoints), the IP
    // leases of attached containers and published ports. A network with leases cannot
    // be deleted (no cascade); removing a container removes its endpoints, leases and
    // ports. Endpoints name their network without a foreign key: as in docker, a
    // stopped container may outlive a network it was created for (starting it fails).
    r#"
    CREATE TABLE networks (
        id       TEXT PRIMARY KEY,             -- 64 hex digits
        name     TEXT NOT NULL UNIQUE,
        driver   TEXT NOT NULL,
        bridge   TEXT NOT NULL UNIQUE,         -- Linux bridge, e.g. coracle1
        subnet   TEXT NOT NULL,                -- CIDR
        gateway  TEXT NOT NULL,
        internal INTEGER NOT NULL,
        labels   TEXT NOT NULL,                -- JSON object
        created  TEXT NOT NULL                 -- RFC 3339
    );
    CREATE TABLE container_endpoints (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        network_id   TEXT NOT NULL,
        aliases      TEXT NOT NULL,            -- JSON array
        ip           TEXT,                     -- --ip
        mac          TEXT,                     -- --mac-address
        position     INTEGER NOT NULL,         -- order of attachment (eth0, eth1, ...)
        PRIMARY KEY (container_id, network_id)
    );
    CREATE INDEX container_endpoints_network ON container_endpoints(network_id);
    CREATE TABLE leases (
        network_id   TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        ip           TEXT NOT NULL,
        mac          TEXT NOT NULL,
        host_if      TEXT NOT NULL,
        container_if TEXT NOT NULL,
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, ip)
    );
    CREATE INDEX leases_container ON leases(container_id);
    CREATE TABLE ports (
        container_id   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        proto          TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
        host_ip        TEXT NOT NULL,          -- 0.0.0.0: every address
        host_port      INTEGER NOT NULL,
        container_port INTEGER NOT NULL
    );
    CREATE INDEX ports_container ON ports(container_id);
    "#,
];
