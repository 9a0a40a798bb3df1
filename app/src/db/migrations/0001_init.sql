-- Initial schema. Migrations are forward-only and immutable once released: add 0002_… instead.

CREATE TABLE users (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username    text        NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  email       text        NOT NULL CHECK (position('@' in email) > 1),
  is_admin    boolean     NOT NULL DEFAULT false,
  disabled    boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Proxy API keys: only the SHA-256 of the key is stored; the key itself is shown once.
CREATE TABLE api_keys (
  id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         integer     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name            text        NOT NULL DEFAULT '',
  key_hash        bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
  display_prefix  text        NOT NULL,
  status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  rpm             integer     CHECK (rpm >= 0),      -- NULL: RATE_LIMIT_RPM applies
  tpm             integer     CHECK (tpm >= 0),      -- NULL: RATE_LIMIT_TPM applies
  allowed_models  text[],                            -- NULL: every model
  expires_at      timestamptz,
  last_used_at    timestamptz,
  revoked_at      timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Upstream (OpenAI / Azure OpenAI) keys, sealed with AES-256-GCM under ENCRYPTION_KEY.
CREATE TABLE upstream_keys (
  id                 integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider           text        NOT NULL CHECK (provider IN ('openai', 'azure')),
  key_ciphertext     bytea       NOT NULL,
  key_iv             bytea       NOT NULL CHECK (octet_length(key_iv) = 12),
  key_auth_tag       bytea       NOT NULL CHECK (octet_length(key_auth_tag) = 16),
  encryption_key_id  text        NOT NULL,          -- which ENCRYPTION_KEY sealed it (and keyed the fingerprint)
  fingerprint        bytea       NOT NULL CHECK (octet_length(fingerprint) = 32),
  source             text        NOT NULL CHECK (source IN ('env', 'admin')),
  endpoint           text,                           -- Azure resource endpoint; NULL for OpenAI (OPENAI_BASE_URL)
  deployments        jsonb,                          -- Azure: [{"deployment": "...", "models": ["..."]}]
  status             text        NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('active', 'cooling', 'disabled', 'retired')),
  failure_count      integer     NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
  last_error         text,
  cooldown_until     timestamptz,
  last_used_at       timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, fingerprint)
);

-- One row per proxied request. No foreign keys on purpose: the history must outlive deleted
-- keys, and batch inserts on the hot path should not pay for reference checks. The id is made
-- by the app so a retried batch insert cannot write a row twice.
CREATE TABLE usage_logs (
  id                 uuid        PRIMARY KEY,
  request_id         text        NOT NULL,
  api_key_id         integer,
  user_id            integer,
  upstream_key_id    integer,
  route              text        NOT NULL,
  model              text,
  prompt_tokens      integer     NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
  completion_tokens  integer     NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
  total_tokens       integer     NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
  estimated          boolean     NOT NULL DEFAULT false,
  status_code        smallint    NOT NULL,
  error_code         text,
  latency_ms         integer     NOT NULL CHECK (latency_ms >= 0),
  stream             boolean     NOT NULL DEFAULT false,
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_logs_key_time  ON usage_logs (api_key_id, created_at);
CREATE INDEX usage_logs_user_time ON usage_logs (user_id, created_at);
CREATE INDEX usage_logs_time      ON usage_logs (created_at);
CREATE INDEX usage_logs_request   ON usage_logs (request_id);
