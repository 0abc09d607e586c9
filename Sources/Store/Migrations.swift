import GRDB
import Storage

extension AppDatabase {
    /// Migrations are never edited once shipped; add a new one instead.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-core") { db in
            try db.execute(sql: """
                CREATE TABLE sites (
                    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 4 AND 64),
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                    domains TEXT NOT NULL,
                    policy TEXT NOT NULL DEFAULT 'default',
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE salts (
                    day INTEGER PRIMARY KEY NOT NULL,
                    salt BLOB NOT NULL CHECK (length(salt) = 32)
                );
                CREATE TABLE secrets (
                    name TEXT PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL
                );
                CREATE TABLE users (
                    id INTEGER PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    password_hash TEXT NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('owner','admin','manager','viewer')),
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE sessions (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    visitor INTEGER NOT NULL,
                    subject INTEGER,
                    decision TEXT NOT NULL CHECK (decision IN ('anonymous','identified')),
                    started_at INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL,
                    entry_path TEXT,
                    exit_path TEXT,
                    pageviews INTEGER NOT NULL DEFAULT 0,
                    interactions INTEGER NOT NULL DEFAULT 0,
                    engaged_ms INTEGER NOT NULL DEFAULT 0,
                    duration_ms INTEGER NOT NULL DEFAULT 0,
                    bounce INTEGER NOT NULL DEFAULT 1 CHECK (bounce IN (0,1)),
                    source_type TEXT,
                    referrer_host TEXT,
                    utm_source TEXT,
                    utm_medium TEXT,
                    utm_campaign TEXT,
                    country TEXT,
                    browser TEXT,
                    os TEXT,
                    device TEXT,
                    CHECK (decision = 'identified' OR subject IS NULL)
                );
                CREATE INDEX sessions_by_visitor ON sessions(site_id, visitor, last_seen);
                CREATE INDEX sessions_by_time ON sessions(site_id, started_at);
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    client_id TEXT,
                    ts INTEGER NOT NULL,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
                    path TEXT NOT NULL,
                    decision TEXT NOT NULL CHECK (decision IN ('anonymous','identified')),
                    visitor INTEGER NOT NULL,
                    session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
                    subject INTEGER,
                    country TEXT, region TEXT, city TEXT, asn INTEGER, asn_org TEXT,
                    browser TEXT, browser_version TEXT, os TEXT, device TEXT, screen TEXT,
                    source_type TEXT NOT NULL,
                    referrer_host TEXT, referrer_path TEXT,
                    utm_source TEXT, utm_medium TEXT, utm_campaign TEXT, utm_term TEXT, utm_content TEXT,
                    click_id_kind TEXT, click_id TEXT,
                    props TEXT,
                    value REAL, currency TEXT CHECK (currency IS NULL OR length(currency) = 3),
                    engaged_ms INTEGER, scroll INTEGER CHECK (scroll IS NULL OR scroll BETWEEN 0 AND 100),
                    CHECK (decision = 'identified' OR (subject IS NULL AND click_id IS NULL))
                );
                CREATE UNIQUE INDEX events_client_id ON events(site_id, client_id) WHERE client_id IS NOT NULL;
                CREATE INDEX events_by_time ON events(site_id, ts);
                CREATE INDEX events_by_subject ON events(subject) WHERE subject IS NOT NULL;
                """)
        }
        migrator.registerMigration("v2-consent-records") { db in
            try db.execute(sql: """
                CREATE TABLE consent_records (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    ts INTEGER NOT NULL,
                    banner_version TEXT NOT NULL CHECK (length(banner_version) <= 32),
                    policy TEXT NOT NULL,
                    policy_version INTEGER NOT NULL,
                    analytics INTEGER NOT NULL CHECK (analytics IN (0,1)),
                    marketing INTEGER NOT NULL CHECK (marketing IN (0,1)),
                    subject INTEGER,
                    CHECK (subject IS NULL OR analytics = 1)
                );
                CREATE INDEX consent_records_by_site ON consent_records(site_id, ts);
                CREATE INDEX consent_records_by_subject ON consent_records(subject) WHERE subject IS NOT NULL;
                """)
        }
        migrator.registerMigration("v3-privacy-office") { db in
            try db.execute(sql: """
                CREATE TABLE audit_log (
                    seq INTEGER PRIMARY KEY,
                    ts INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    site_id TEXT,
                    detail TEXT NOT NULL,
                    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
                    hash BLOB NOT NULL CHECK (length(hash) = 32)
                );
                CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
                BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
                CREATE TABLE privacy_requests (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('subject','email','user')),
                    subject_hash INTEGER,
                    received_at INTEGER NOT NULL,
                    deadline_at INTEGER NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('received','scheduled','done','rejected')),
                    reason TEXT,
                    filed_by TEXT NOT NULL,
                    processed_at INTEGER,
                    receipt TEXT,
                    CHECK (status IN ('received','scheduled') OR subject_hash IS NULL)
                );
                CREATE INDEX privacy_requests_by_status ON privacy_requests(status, deadline_at);
                CREATE INDEX privacy_requests_by_site ON privacy_requests(site_id, received_at);
                CREATE TABLE job_runs (
                    name TEXT PRIMARY KEY NOT NULL,
                    last_run_at INTEGER NOT NULL,
                    detail TEXT
                );
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
                    label TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    last_used_at INTEGER
                );
                ALTER TABLE events ADD COLUMN email_hash INTEGER;
                CREATE INDEX events_by_email ON events(email_hash) WHERE email_hash IS NOT NULL;
                CREATE INDEX sessions_by_subject ON sessions(subject) WHERE subject IS NOT NULL;
                CREATE INDEX events_by_session ON events(session_id);
                """)
        }
        migrator.registerMigration("v4-conversions") { db in
            try db.execute(sql: """
                CREATE TABLE webhook_sources (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    provider TEXT NOT NULL CHECK (provider IN ('stripe','shopify','typeform','jotform','callrail','generic')),
                    secret TEXT NOT NULL CHECK (length(secret) BETWEEN 16 AND 200),
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (site_id, provider)
                );
                CREATE TABLE conversions (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    provider TEXT NOT NULL,
                    external_id TEXT NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
                    kind TEXT NOT NULL CHECK (kind IN ('sale','refund','lead','call')),
                    ts INTEGER NOT NULL,
                    value REAL NOT NULL DEFAULT 0,
                    currency TEXT CHECK (currency IS NULL OR length(currency) = 3),
                    refers_to TEXT,
                    subject INTEGER, email_hash INTEGER, user_hash INTEGER,
                    attributed_via TEXT NOT NULL DEFAULT 'none' CHECK (attributed_via IN ('subject','email','user','payload','none')),
                    first_source_type TEXT, first_referrer_host TEXT, first_utm_source TEXT, first_utm_medium TEXT, first_utm_campaign TEXT,
                    first_ts INTEGER,
                    last_source_type TEXT, last_referrer_host TEXT, last_utm_source TEXT, last_utm_medium TEXT, last_utm_campaign TEXT,
                    last_ts INTEGER,
                    detail TEXT,
                    UNIQUE (site_id, provider, external_id)
                );
                CREATE INDEX conversions_by_time ON conversions(site_id, ts);
                CREATE INDEX conversions_by_subject ON conversions(subject) WHERE subject IS NOT NULL;
                CREATE INDEX conversions_by_email ON conversions(email_hash) WHERE email_hash IS NOT NULL;
                CREATE INDEX conversions_by_user ON conversions(user_hash) WHERE user_hash IS NOT NULL;
                CREATE TABLE client_terms (
                    site_id TEXT PRIMARY KEY NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    lookback_days INTEGER NOT NULL DEFAULT 30 CHECK (lookback_days BETWEEN 1 AND 365),
                    credit TEXT NOT NULL DEFAULT 'last' CHECK (credit IN ('first','last','either')),
                    percent REAL NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
                    per_lead REAL NOT NULL DEFAULT 0 CHECK (per_lead >= 0),
                    per_call REAL NOT NULL DEFAULT 0 CHECK (per_call >= 0),
                    monthly_minimum REAL NOT NULL DEFAULT 0 CHECK (monthly_minimum >= 0),
                    currency TEXT NOT NULL DEFAULT 'USD' CHECK (length(currency) = 3),
                    our_sources TEXT NOT NULL DEFAULT '',
                    updated_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5-dashboard") { db in
            try db.execute(sql: """
                CREATE TABLE user_sites (
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    PRIMARY KEY (user_id, site_id)
                );
                CREATE TABLE web_sessions (
                    token_hash BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    csrf TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v6-goals") { db in
            try db.execute(sql: """
                CREATE TABLE goals (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                    kind TEXT NOT NULL CHECK (kind IN ('page','event','conversion')),
                    match TEXT NOT NULL CHECK (length(match) BETWEEN 1 AND 200)
                );
                CREATE TABLE funnels (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                    steps TEXT NOT NULL
                );
                DROP INDEX events_by_session;
                CREATE INDEX events_by_session ON events(session_id, ts);
                """)
        }
        migrator.registerMigration("v7-rollups") { db in
            try db.execute(sql: """
                CREATE TABLE rollup_days (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    visitors INTEGER NOT NULL, pageviews INTEGER NOT NULL,
                    visits INTEGER NOT NULL, bounces INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
                    refreshed_at INTEGER NOT NULL,
                    PRIMARY KEY (site_id, day)
                ) WITHOUT ROWID;
                CREATE TABLE rollup_values (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    dimension TEXT NOT NULL,
                    value TEXT NOT NULL,
                    visitors INTEGER NOT NULL,
                    pageviews INTEGER NOT NULL,
                    PRIMARY KEY (site_id, dimension, day, value)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v8-rollup-pairs") { db in
            try db.execute(sql: """
                CREATE TABLE rollup_pairs (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    fdim TEXT NOT NULL, fval TEXT NOT NULL,
                    dim TEXT NOT NULL, value TEXT NOT NULL,
                    visitors INTEGER NOT NULL, pageviews INTEGER NOT NULL,
                    PRIMARY KEY (site_id, fdim, fval, dim, day, value)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v9-session-lookup") { db in
            // Every event moves its session's last_seen: keeping it out of the lookup index
            // saves an index update per event (a visitor hash has few sessions a day).
            try db.execute(sql: """
                CREATE INDEX sessions_by_site_visitor ON sessions(site_id, visitor);
                DROP INDEX sessions_by_visitor;
                """)
        }
        migrator.registerMigration("v10-verified-erasure") { db in
            // Deletions are done only once a WAL truncation after them succeeded: requests wait in
            // 'erasing', salts and purge runs in their own tables. Key scopes; login devices.
            try db.execute(sql: """
                CREATE TABLE privacy_requests_v10 (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('subject','email','user')),
                    subject_hash INTEGER,
                    received_at INTEGER NOT NULL,
                    deadline_at INTEGER NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('received','scheduled','erasing','done','rejected')),
                    reason TEXT,
                    filed_by TEXT NOT NULL,
                    processed_at INTEGER,
                    receipt TEXT,
                    erased TEXT,
                    erased_at INTEGER,
                    rollup_days TEXT,
                    CHECK (status IN ('received','scheduled') OR subject_hash IS NULL),
                    CHECK (status NOT IN ('erasing','done') OR (erased IS NOT NULL AND erased_at IS NOT NULL)),
                    CHECK (status != 'done' OR receipt IS NOT NULL)
                );
                INSERT INTO privacy_requests_v10 (id, site_id, subject_kind, subject_hash, received_at, deadline_at, status, reason,
                                                  filed_by, processed_at, receipt, erased, erased_at)
                  SELECT id, site_id, subject_kind, subject_hash, received_at, deadline_at, status, reason, filed_by, processed_at, receipt,
                         CASE WHEN status = 'done' THEN '{}' END, CASE WHEN status = 'done' THEN processed_at END
                  FROM privacy_requests;
                DROP TABLE privacy_requests;
                ALTER TABLE privacy_requests_v10 RENAME TO privacy_requests;
                CREATE INDEX privacy_requests_by_status ON privacy_requests(status, deadline_at);
                CREATE INDEX privacy_requests_by_site ON privacy_requests(site_id, received_at);
                CREATE TABLE salt_destructions (
                    day INTEGER PRIMARY KEY NOT NULL,
                    deleted_at INTEGER NOT NULL,
                    destroyed_at INTEGER
                );
                CREATE TABLE purge_runs (
                    id INTEGER PRIMARY KEY,
                    actor TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    heartbeat_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    verified_at INTEGER,
                    CHECK (verified_at IS NULL OR finished_at IS NOT NULL)
                );
                CREATE TABLE purge_run_counts (
                    run_id INTEGER NOT NULL REFERENCES purge_runs(id) ON DELETE CASCADE,
                    target TEXT NOT NULL,
                    rows INTEGER NOT NULL CHECK (rows >= 0),
                    PRIMARY KEY (run_id, target)
                );
                ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'stats:read' CHECK (scope IN ('stats:read','privacy:officer'));
                ALTER TABLE api_keys ADD COLUMN issued_by TEXT NOT NULL DEFAULT 'unknown';
                CREATE TABLE login_devices (
                    token_hash BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    created_at INTEGER NOT NULL,
                    last_used_at INTEGER NOT NULL
                );
                CREATE INDEX login_devices_by_user ON login_devices(user_id);
                """)
        }
        migrator.registerMigration("v11-visit-acquisition") { db in
            // A visit's source, referrer, campaign and click-id kind are its landing event's, and
            // every event of the visit carries them (they were each event's own: internal
            // navigation counted as direct). Rollups are rebuilt from the corrected events; days
            // whose events retention has already removed keep the rollups they have (nothing to
            // rebuild them from).
            try db.execute(sql: """
                ALTER TABLE sessions ADD COLUMN referrer_path TEXT;
                ALTER TABLE sessions ADD COLUMN utm_term TEXT;
                ALTER TABLE sessions ADD COLUMN utm_content TEXT;
                ALTER TABLE sessions ADD COLUMN click_id_kind TEXT;
                UPDATE sessions SET (referrer_path, utm_term, utm_content, click_id_kind) = (
                    SELECT e.referrer_path, e.utm_term, e.utm_content, e.click_id_kind FROM events e
                    WHERE e.session_id = sessions.id ORDER BY e.ts, e.id LIMIT 1);
                UPDATE events SET source_type = coalesce(s.source_type, events.source_type), referrer_host = s.referrer_host,
                    referrer_path = s.referrer_path, utm_source = s.utm_source, utm_medium = s.utm_medium,
                    utm_campaign = s.utm_campaign, utm_term = s.utm_term, utm_content = s.utm_content,
                    click_id_kind = CASE WHEN events.click_id IS NULL THEN s.click_id_kind ELSE events.click_id_kind END
                FROM sessions s
                WHERE s.id = events.session_id AND (events.source_type IS NOT coalesce(s.source_type, events.source_type)
                    OR events.referrer_host IS NOT s.referrer_host OR events.referrer_path IS NOT s.referrer_path
                    OR events.utm_source IS NOT s.utm_source OR events.utm_medium IS NOT s.utm_medium
                    OR events.utm_campaign IS NOT s.utm_campaign OR events.utm_term IS NOT s.utm_term
                    OR events.utm_content IS NOT s.utm_content OR (events.click_id IS NULL AND events.click_id_kind IS NOT s.click_id_kind));
                DELETE FROM rollup_values WHERE day >= (SELECT min(ts) / 86400000 FROM events WHERE events.site_id = rollup_values.site_id);
                DELETE FROM rollup_pairs WHERE day >= (SELECT min(ts) / 86400000 FROM events WHERE events.site_id = rollup_pairs.site_id);
                DELETE FROM rollup_days WHERE day >= (SELECT min(ts) / 86400000 FROM events WHERE events.site_id = rollup_days.site_id);
                """)
        }
        migrator.registerMigration("v12-one-conversion-model") { db in
            // Conversions tracked by the pixel (an event named "conversion", or any event with a
            // value) are stored as conversions too, attributed to their visit; every conversion
            // links the visit it is attributed to (session_id), so a webhook sale counts its
            // visitor. Existing subject-linked webhook conversions get the visit of their last touch
            // (new ones the latest visit of their journey), refunds their sale's; e-mail-linked
            // ones stay without a visit (they count in unfiltered views only).
            try db.execute(sql: """
                CREATE TABLE conversions_v12 (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    provider TEXT NOT NULL,
                    external_id TEXT NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
                    kind TEXT NOT NULL CHECK (kind IN ('sale','refund','lead','call')),
                    ts INTEGER NOT NULL,
                    value REAL NOT NULL DEFAULT 0,
                    currency TEXT CHECK (currency IS NULL OR length(currency) = 3),
                    refers_to TEXT,
                    subject INTEGER, email_hash INTEGER, user_hash INTEGER,
                    attributed_via TEXT NOT NULL DEFAULT 'none' CHECK (attributed_via IN ('visit','subject','email','user','payload','none')),
                    first_source_type TEXT, first_referrer_host TEXT, first_utm_source TEXT, first_utm_medium TEXT, first_utm_campaign TEXT,
                    first_ts INTEGER,
                    last_source_type TEXT, last_referrer_host TEXT, last_utm_source TEXT, last_utm_medium TEXT, last_utm_campaign TEXT,
                    last_ts INTEGER,
                    detail TEXT,
                    session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
                    UNIQUE (site_id, provider, external_id)
                );
                INSERT INTO conversions_v12
                  SELECT c.*, CASE WHEN c.attributed_via = 'subject' THEN (SELECT s.id FROM sessions s
                      WHERE s.subject = c.subject AND s.site_id = c.site_id AND s.started_at = c.last_ts ORDER BY s.id LIMIT 1) END
                  FROM conversions c;
                DROP TABLE conversions;
                ALTER TABLE conversions_v12 RENAME TO conversions;
                CREATE INDEX conversions_by_time ON conversions(site_id, ts);
                CREATE INDEX conversions_by_subject ON conversions(subject) WHERE subject IS NOT NULL;
                CREATE INDEX conversions_by_email ON conversions(email_hash) WHERE email_hash IS NOT NULL;
                CREATE INDEX conversions_by_user ON conversions(user_hash) WHERE user_hash IS NOT NULL;
                CREATE INDEX conversions_by_session ON conversions(session_id) WHERE session_id IS NOT NULL;
                UPDATE conversions SET session_id = (SELECT o.session_id FROM conversions o
                    WHERE o.site_id = conversions.site_id AND o.provider = conversions.provider AND o.external_id = conversions.refers_to)
                  WHERE kind = 'refund' AND refers_to IS NOT NULL AND session_id IS NULL;
                INSERT INTO conversions (site_id, provider, external_id, kind, ts, value, currency, subject, attributed_via,
                    first_source_type, first_referrer_host, first_utm_source, first_utm_medium, first_utm_campaign, first_ts,
                    last_source_type, last_referrer_host, last_utm_source, last_utm_medium, last_utm_campaign, last_ts, session_id)
                  SELECT e.site_id, 'pixel', coalesce(e.client_id, 'event-' || e.id || '-' || e.ts),
                    CASE WHEN e.value IS NULL THEN 'lead' ELSE 'sale' END, e.ts, coalesce(e.value, 0), e.currency, e.subject, 'visit',
                    e.source_type, e.referrer_host, e.utm_source, e.utm_medium, e.utm_campaign, coalesce(s.started_at, e.ts),
                    e.source_type, e.referrer_host, e.utm_source, e.utm_medium, e.utm_campaign, coalesce(s.started_at, e.ts), e.session_id
                  FROM events e LEFT JOIN sessions s ON s.id = e.session_id
                  WHERE e.name = 'conversion' OR e.value IS NOT NULL
                  ON CONFLICT DO NOTHING;
                """)
        }
        migrator.registerMigration("v13-late-events") { db in
            // Days that received events dated by the browser after their rollup was built.
            try db.execute(sql: """
                CREATE TABLE rollup_stale (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    PRIMARY KEY (site_id, day)
                );
                """)
        }
        migrator.registerMigration("v14-fact-changes") { db in
            // Per site and UTC day, how often its stored events or visits were changed other than
            // by appending (erasure, retention, expiring columns): the engine reloads a day whose
            // generation moved (see FactStore).
            // The engine answers filtered views; the rollups of filter pairs are no longer kept.
            try db.execute(sql: """
                DROP TABLE rollup_pairs;
                CREATE TABLE fact_changes (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    generation INTEGER NOT NULL,
                    PRIMARY KEY (site_id, day)
                );
                """)
        }
        migrator.registerMigration("v15-time-zones") { db in
            // Each site's IANA time zone decides its days (see SiteCalendar); a rolled-up day
            // records the zone it was counted in (days kept after their events were purged keep
            // the zone of their time when the site moves).
            try db.execute(sql: """
                ALTER TABLE sites ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
                ALTER TABLE rollup_days ADD COLUMN zone TEXT NOT NULL DEFAULT 'UTC';
                """)
        }
        migrator.registerMigration("v16-channels") { db in
            // A visit's channel (GA4-style group) and the name of its known source (Google, GMX…),
            // decided by the classifier at ingestion. Rows stored before are filled in by the
            // serve process's backfill (the classifier is not the database's), found through the
            // partial indexes, which empty as it goes.
            try db.execute(sql: """
                ALTER TABLE events ADD COLUMN channel TEXT;
                ALTER TABLE events ADD COLUMN source_name TEXT;
                ALTER TABLE sessions ADD COLUMN channel TEXT;
                ALTER TABLE sessions ADD COLUMN source_name TEXT;
                CREATE INDEX events_channel_unset ON events(id) WHERE channel IS NULL;
                CREATE INDEX sessions_channel_unset ON sessions(id) WHERE channel IS NULL;
                """)
        }
        migrator.registerMigration("v17-consent-sources") { db in
            // Where a recorded choice came from (Candor's banner, a CMP through IAB TCF, Google
            // Consent Mode) and what the CMP reported: its id and version, the TCF policy
            // version and the purposes consented to, the Consent Mode signals. Never the TC string.
            try db.execute(sql: """
                ALTER TABLE consent_records ADD COLUMN source TEXT NOT NULL DEFAULT 'candor' CHECK (source IN ('candor', 'tcf', 'gcm'));
                ALTER TABLE consent_records ADD COLUMN cmp_id INTEGER;
                ALTER TABLE consent_records ADD COLUMN cmp_version INTEGER;
                ALTER TABLE consent_records ADD COLUMN tcf_policy_version INTEGER;
                ALTER TABLE consent_records ADD COLUMN purposes TEXT CHECK (purposes IS NULL OR length(purposes) <= 100);
                ALTER TABLE consent_records ADD COLUMN signals TEXT CHECK (signals IS NULL OR length(signals) <= 200);
                """)
        }
        migrator.registerMigration("v18-banner-texts") { db in
            // The consent banner's texts a site sets in place of the built-in ones (JSON:
            // language → key → text), read with the site.
            try db.execute(sql: "ALTER TABLE sites ADD COLUMN banner_texts TEXT NOT NULL DEFAULT '{}' CHECK (length(banner_texts) <= 65536)")
        }
        migrator.registerMigration("v19-consent-counts") { db in
            // Per site and day, how consent shaped collection (see ConsentMetric); kept as long as
            // the site's rollups.
            try db.execute(sql: """
                CREATE TABLE consent_counts (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    metric TEXT NOT NULL CHECK (length(metric) <= 40),
                    n INTEGER NOT NULL CHECK (n >= 0),
                    PRIMARY KEY (site_id, day, metric)
                )
                """)
        }
        migrator.registerMigration("v20-destinations") { db in
            // Destinations a site forwards consented conversions to, and the delivery outbox: a
            // delivery row is written in the transaction that stores its conversion, and holds the
            // minimised facts to send (cleared once delivered), and for CRMs (wants_contact) the
            // e-mail and name sealed under the secret key. Credentials are libsodium
            // secretboxes under a key kept outside the database. sessions.forwardable is the
            // latest ForwardingGate answer of the visit.
            try db.execute(sql: """
                CREATE TABLE destinations (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
                    label TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 80),
                    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),
                    settings TEXT NOT NULL DEFAULT '{}' CHECK (length(settings) <= 8192),
                    credential BLOB,
                    wants_contact INTEGER NOT NULL DEFAULT 0 CHECK (wants_contact IN (0,1)),
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX destinations_by_site ON destinations(site_id);
                CREATE TABLE deliveries (
                    id INTEGER PRIMARY KEY,
                    destination_id INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
                    site_id TEXT NOT NULL,
                    conversion_id INTEGER REFERENCES conversions(id) ON DELETE CASCADE,
                    event_id TEXT NOT NULL CHECK (length(event_id) <= 200),
                    facts TEXT,
                    contact BLOB,
                    status TEXT NOT NULL CHECK (status IN ('pending','sent','skipped','not_found','dead')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    due_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    sent_at INTEGER,
                    duration_ms INTEGER,
                    last_status INTEGER,
                    last_error TEXT CHECK (last_error IS NULL OR length(last_error) <= 500),
                    UNIQUE (destination_id, event_id)
                );
                CREATE INDEX deliveries_due ON deliveries(status, due_at);
                CREATE INDEX deliveries_by_destination ON deliveries(destination_id, created_at);
                CREATE INDEX deliveries_by_conversion ON deliveries(conversion_id);
                ALTER TABLE sessions ADD COLUMN forwardable INTEGER NOT NULL DEFAULT 0 CHECK (forwardable IN (0,1));
                """)
        }
        // Every view of the analytics engine reads the range's conversions (conversions are read
        // live, not loaded with the days): covering them in time order saves a table lookup per
        // conversion (about 30 ms for 56,000 conversions in 30 days, measured at 10M events).
        migrator.registerMigration("v21-conversions-covering") { db in
            try db.execute(sql: """
                DROP INDEX conversions_by_time;
                CREATE INDEX conversions_by_time ON conversions(site_id, ts, id, kind, currency, value, session_id);
                """)
        }
        migrator.registerMigration("v22-site-archive") { db in
            // An archived site collects nothing; its data stays until retention or deletion.
            // deleting_at marks a deletion under way (restoring is refused, a second one waits).
            try db.execute(sql: """
                ALTER TABLE sites ADD COLUMN archived_at INTEGER;
                ALTER TABLE sites ADD COLUMN deleting_at INTEGER;
                CREATE INDEX deliveries_by_site ON deliveries(site_id);
                """)
        }
        migrator.registerMigration("v23-two-factor") { db in
            // Second factors: the TOTP secret sealed under the install's secret key; recovery codes
            // as BLAKE2b hashes; sign-ins between password and code (token hash only); settings
            // of the whole install (which roles must use a second factor: none until set, so an
            // upgrade locks nobody out; `candor init` sets owners and admins). Sessions gain the
            // browser's label and when they were last used, for their owner's list.
            try db.execute(sql: """
                CREATE TABLE two_factor (
                    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    secret BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    confirmed_at INTEGER,
                    last_step INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE recovery_codes (
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    code_hash BLOB NOT NULL CHECK (length(code_hash) = 32),
                    used_at INTEGER,
                    PRIMARY KEY (user_id, code_hash)
                );
                CREATE TABLE login_challenges (
                    token_hash BLOB PRIMARY KEY NOT NULL CHECK (length(token_hash) = 32),
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    expires_at INTEGER NOT NULL,
                    failures INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE install_settings (
                    name TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                ALTER TABLE web_sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';
                ALTER TABLE web_sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX web_sessions_by_user ON web_sessions(user_id);
                """)
        }
        migrator.registerMigration("v24-shared-links") { db in
            // Read-only links to a site's view: the token only as its hash; revoking deletes the row
            // (the audit log keeps its creation and revocation).
            try db.execute(sql: """
                CREATE TABLE shared_links (
                    id TEXT PRIMARY KEY NOT NULL,
                    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    label TEXT NOT NULL,
                    filters TEXT NOT NULL DEFAULT '',
                    password_hash TEXT,
                    expires_at INTEGER,
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX shared_links_by_site ON shared_links(site_id);
                """)
        }
        migrator.registerMigration("v25-alerts") { db in
            // Alert rules with their state, what they said (history), where they go besides e-mail
            // (URLs and signing secrets sealed), and who wants them by e-mail.
            try db.execute(sql: """
                CREATE TABLE alert_rules (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT REFERENCES sites(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    threshold REAL NOT NULL,
                    cooldown_minutes INTEGER NOT NULL,
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    firing_since INTEGER,
                    last_change_at INTEGER
                );
                CREATE INDEX alert_rules_by_site ON alert_rules(site_id);
                CREATE TABLE alert_history (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    rule_id TEXT NOT NULL,
                    site_id TEXT,
                    kind TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('fired', 'resolved')),
                    at INTEGER NOT NULL,
                    message TEXT NOT NULL,
                    delivered TEXT NOT NULL DEFAULT ''
                );
                CREATE INDEX alert_history_by_time ON alert_history(at);
                CREATE INDEX alert_history_by_site ON alert_history(site_id);
                CREATE TABLE notification_channels (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT REFERENCES sites(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL CHECK (kind IN ('slack', 'teams', 'webhook')),
                    label TEXT NOT NULL,
                    target BLOB NOT NULL,
                    secret BLOB,
                    created_at INTEGER NOT NULL
                );
                ALTER TABLE users ADD COLUMN alert_emails INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v26-report-subscriptions") { db in
            try db.execute(sql: """
                CREATE TABLE report_subscriptions (
                    id TEXT PRIMARY KEY NOT NULL,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
                    csv INTEGER NOT NULL DEFAULT 0,
                    last_first_day INTEGER,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX report_subscriptions_by_site ON report_subscriptions(site_id);
                """)
        }
        migrator.registerMigration("v27-two-factor-lock") { db in
            // Wrong authenticator codes of an account within a day (stored: a restart does not reset them).
            try db.execute(sql: """
                ALTER TABLE two_factor ADD COLUMN wrong_codes INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE two_factor ADD COLUMN wrong_since INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v28-annotations") { db in
            try db.execute(sql: """
                CREATE TABLE annotations (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT REFERENCES sites(id) ON DELETE CASCADE,
                    day TEXT NOT NULL,
                    text TEXT NOT NULL,
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX annotations_by_site ON annotations(site_id, day);
                """)
        }
        migrator.registerMigration("v29-free-space-scrubs") { db in
            // The last pass that zeroed the free space of the file's pages (see `FreeSpace`); one row.
            try db.execute(sql: """
                CREATE TABLE free_space_scrubs (
                    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
                    at INTEGER NOT NULL,
                    pages_read INTEGER NOT NULL,
                    pages_zeroed INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v30-consolidated-reports") { db in
            // A subscription without a site is the consolidated report of every site the account may read.
            try db.execute(sql: """
                CREATE TABLE report_subscriptions_new (
                    id TEXT PRIMARY KEY NOT NULL,
                    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    site_id TEXT REFERENCES sites(id) ON DELETE CASCADE,
                    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
                    csv INTEGER NOT NULL DEFAULT 0,
                    last_first_day INTEGER,
                    created_at INTEGER NOT NULL
                );
                INSERT INTO report_subscriptions_new SELECT id, user_id, site_id, period, csv, last_first_day, created_at FROM report_subscriptions;
                DROP TABLE report_subscriptions;
                ALTER TABLE report_subscriptions_new RENAME TO report_subscriptions;
                CREATE INDEX report_subscriptions_by_site ON report_subscriptions(site_id);
                """)
        }
        migrator.registerMigration("v31-provisioning-keys") { db in
            // Provisioning keys (scope admin:provision) belong to no site; every other key to one.
            try db.execute(sql: """
                CREATE TABLE api_keys_new (
                    id TEXT PRIMARY KEY NOT NULL,
                    site_id TEXT REFERENCES sites(id) ON DELETE CASCADE,
                    secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
                    label TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    last_used_at INTEGER,
                    scope TEXT NOT NULL DEFAULT 'stats:read' CHECK (scope IN ('stats:read', 'privacy:officer', 'admin:provision')),
                    issued_by TEXT NOT NULL DEFAULT 'unknown',
                    CHECK ((site_id IS NULL) = (scope = 'admin:provision'))
                );
                INSERT INTO api_keys_new (id, site_id, secret_hash, label, created_at, last_used_at, scope, issued_by)
                    SELECT id, site_id, secret_hash, label, created_at, last_used_at, scope, issued_by FROM api_keys;
                DROP TABLE api_keys;
                ALTER TABLE api_keys_new RENAME TO api_keys;
                CREATE INDEX api_keys_by_site ON api_keys(site_id);
                """)
        }
        migrator.registerMigration("v32-imports") { db in
            // Daily aggregates imported from another analytics tool (Plausible, Umami): one import
            // per file set; each site day is held by at most one import (a later import of the
            // same day replaces it), and only days without collected data are imported.
            try db.execute(sql: """
                CREATE TABLE imports (
                    id INTEGER PRIMARY KEY,
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    source TEXT NOT NULL CHECK (source IN ('plausible', 'umami')),
                    files TEXT NOT NULL,
                    first_day INTEGER NOT NULL,
                    last_day INTEGER NOT NULL,
                    days INTEGER NOT NULL,
                    skipped_days INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    created_by TEXT NOT NULL
                );
                CREATE INDEX imports_by_site ON imports(site_id);
                CREATE TABLE imported_days (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
                    visitors INTEGER NOT NULL CHECK (visitors >= 0),
                    pageviews INTEGER NOT NULL CHECK (pageviews >= 0),
                    visits INTEGER NOT NULL CHECK (visits >= 0),
                    bounces INTEGER NOT NULL CHECK (bounces >= 0),
                    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
                    PRIMARY KEY (site_id, day)
                );
                CREATE INDEX imported_days_by_import ON imported_days(import_id);
                CREATE TABLE imported_values (
                    site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
                    day INTEGER NOT NULL,
                    dimension TEXT NOT NULL,
                    value TEXT NOT NULL,
                    import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
                    visitors INTEGER NOT NULL CHECK (visitors >= 0),
                    count INTEGER NOT NULL CHECK (count >= 0),
                    PRIMARY KEY (site_id, dimension, day, value)
                );
                CREATE INDEX imported_values_by_import ON imported_values(import_id);
                """)
        }
        migrator.registerMigration("v33-job-claims") { db in
            // A scheduled job's run is claimed before it starts, so that processes sharing the
            // store run it once per period (Storage.JobLedger); a claim ends with the run's record
            // or when its lease (`until`, ms) expires.
            // Every run is logged too (a week of them), with the process that made it.
            try db.execute(sql: """
                CREATE TABLE job_claims (
                    name TEXT PRIMARY KEY NOT NULL,
                    node TEXT NOT NULL,
                    until INTEGER NOT NULL
                );
                CREATE TABLE job_run_log (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    node TEXT NOT NULL,
                    ran_at INTEGER NOT NULL,
                    detail TEXT
                );
                CREATE INDEX job_run_log_by_name ON job_run_log(name, ran_at);
                CREATE INDEX job_run_log_by_time ON job_run_log(ran_at);
                """)
        }
        return migrator
    }
}
