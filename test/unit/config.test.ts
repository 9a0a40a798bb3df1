import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, type Section } from '../../app/src/config/index.ts';

const KEY = 'ab'.repeat(32);
const BASE = { POSTGRES_PASSWORD: 'pg-secret-canary', ENCRYPTION_KEY: KEY, DOMAIN: 'api.example.com' };
const ALL: Section[] = [
  'database',
  'redis',
  'encryption',
  'upstream',
  'server',
  'metrics',
  'log',
  'rateLimit',
  'usage',
  'acme',
];

function problems(env: Record<string, string>, sections: Section[] = ALL) {
  try {
    loadConfig({ ...BASE, ...env }, sections);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
}

describe('config defaults', () => {
  it('gives the contract defaults', () => {
    const c = loadConfig(BASE, ALL);
    assert.deepEqual(c.database, {
      connectionString: undefined,
      host: 'postgres',
      port: 5432,
      user: 'gpt_proxy',
      database: 'gpt_proxy',
      password: 'pg-secret-canary',
      poolSize: 10,
    });
    assert.deepEqual(c.redis, { url: undefined, host: 'redis', port: 6379, password: undefined });
    assert.equal(c.upstream.type, 'openai');
    assert.equal(c.upstream.openai.baseUrl, 'https://api.openai.com/v1');
    assert.equal(c.upstream.azure.apiVersion, '2024-10-21');
    assert.deepEqual(c.server, {
      host: '0.0.0.0',
      port: 8000,
      maxBodyBytes: 20_971_520,
      shutdownGraceMs: 30_000,
    });
    assert.equal(c.metrics.port, 9464);
    assert.deepEqual(c.log, { level: 'info', promptBody: false });
    assert.deepEqual(c.rateLimit, { rpm: 60, tpm: 0, defaultCompletionTokens: 1024, failOpen: true });
    assert.equal(c.usage.retentionDays, 0);
    assert.equal(c.acme.certDir, '/etc/gpt-proxy/certs');
    assert.equal(c.acme.webroot, '/var/www/acme');
    assert.equal(c.acme.renewFraction, 0.33);
    assert.deepEqual(c.acme.directory, {
      kind: 'acme',
      url: 'https://acme-v02.api.letsencrypt.org/directory',
    });
  });

  it('is frozen all the way down', () => {
    const c = loadConfig({ ...BASE, OPENAI_API_KEYS: 'a,b' }, ['upstream', 'database']);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.upstream.openai.apiKeys));
    assert.throws(() => {
      (c.database as { port: number }).port = 1;
    }, TypeError);
  });

  it('treats empty strings as unset and parses lists', () => {
    const c = loadConfig({ ...BASE, REDIS_PASSWORD: '', OPENAI_API_KEYS: ' k1, ,k2 ,k1' }, [
      'redis',
      'upstream',
    ]);
    assert.equal(c.redis.password, undefined);
    assert.deepEqual(c.upstream.openai.apiKeys, ['k1', 'k2', 'k1']);
  });

  it('maps Azure deployments, including the OpenAI spelling of a bare name', () => {
    const c = loadConfig(
      {
        ...BASE,
        UPSTREAM_TYPE: 'azure',
        AZURE_ENDPOINT: 'https://res.openai.azure.com/',
        AZURE_API_KEYS: 'x',
        AZURE_DEPLOYMENT_NAMES: 'gpt-35-turbo,gpt-4o=prod-4o',
        AZURE_API_VERSION: 'v1',
      },
      ['upstream'],
    );
    assert.equal(c.upstream.azure.endpoint, 'https://res.openai.azure.com');
    assert.equal(c.upstream.azure.apiVersion, 'v1');
    assert.deepEqual(c.upstream.azure.deployments, [
      { deployment: 'gpt-35-turbo', models: ['gpt-35-turbo', 'gpt-3.5-turbo'] },
      { deployment: 'prod-4o', models: ['gpt-4o'] },
    ]);
  });

  it('lets DATABASE_URL stand in for the password and reads ACME directory names', () => {
    const c = loadConfig(
      {
        ENCRYPTION_KEY: KEY,
        DATABASE_URL: 'postgres://u:p@db:5432/x',
        DOMAIN: 'a.b',
        ACME_DIRECTORY: 'self-signed',
      },
      ['database', 'acme'],
    );
    assert.equal(c.database.connectionString, 'postgres://u:p@db:5432/x');
    assert.deepEqual(c.acme.directory, { kind: 'self-signed' });
    const staging = loadConfig({ ...BASE, ACME_DIRECTORY: 'letsencrypt-staging' }, ['acme']);
    assert.match((staging.acme.directory as { url: string }).url, /acme-staging-v02/);
  });
});

describe('config NAME_FILE secrets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-config-'));

  it('reads a secret from NAME_FILE, dropping the trailing newline', () => {
    const file = join(dir, 'key');
    writeFileSync(file, `${KEY}\n`);
    const c = loadConfig({ ENCRYPTION_KEY_FILE: file }, ['encryption']);
    assert.equal(c.encryption.current, KEY);
  });

  it('reads one key per line from OPENAI_API_KEYS_FILE as separate keys', () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-aaaa\r\nsk-bbbb\n\n');
    const c = loadConfig({ OPENAI_API_KEYS_FILE: file }, ['upstream']);
    assert.deepEqual(c.upstream.openai.apiKeys, ['sk-aaaa', 'sk-bbbb']);
  });

  it('refuses both NAME and NAME_FILE, and an unreadable file', () => {
    const file = join(dir, 'pw');
    writeFileSync(file, 'from-file');
    assert.deepEqual(
      problems({ POSTGRES_PASSWORD_FILE: file }, ['database']).map((p) => p.variable),
      ['POSTGRES_PASSWORD'],
    );
    const p = problems({ REDIS_PASSWORD_FILE: join(dir, 'missing') }, ['redis']);
    assert.equal(p[0]?.variable, 'REDIS_PASSWORD_FILE');
    assert.match(p[0]?.message ?? '', /cannot read the file.*ENOENT/);
  });
});

describe('config errors: each bad value gets its own clear message, never the value', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['ENCRYPTION_KEY', { ENCRYPTION_KEY: 'too-short-canary' }, /64 hex characters.*openssl rand -hex 32/],
    ['ENCRYPTION_KEY_PREVIOUS', { ENCRYPTION_KEY_PREVIOUS: `${KEY},nothex-canary` }, /64 hex characters/],
    ['POSTGRES_PASSWORD', { POSTGRES_PASSWORD: '' }, /required.*DATABASE_URL/],
    ['POSTGRES_PORT', { POSTGRES_PORT: '54x' }, /whole number from 1 to 65535/],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://u:canary@h/db' }, /postgres:\/\//],
    ['DB_POOL_SIZE', { DB_POOL_SIZE: '0' }, /whole number from 1/],
    ['REDIS_PORT', { REDIS_PORT: '-1' }, /whole number/],
    ['REDIS_URL', { REDIS_URL: 'http://canary@h' }, /redis:\/\//],
    ['UPSTREAM_TYPE', { UPSTREAM_TYPE: 'anthropic' }, /openai, azure/],
    ['OPENAI_BASE_URL', { OPENAI_BASE_URL: 'ftp://x' }, /http\(s\) URL/],
    [
      'OPENAI_BASE_URL',
      { OPENAI_BASE_URL: 'https://user:canary@api.example.com/v1' },
      /must not hold a user name or password/,
    ],
    [
      'AZURE_ENDPOINT',
      { AZURE_ENDPOINT: 'https://user:canary@r.openai.azure.com' },
      /must not hold a user name or password/,
    ],
    [
      'AZURE_ENDPOINT',
      { UPSTREAM_TYPE: 'azure', AZURE_API_KEYS: 'canary-key', AZURE_DEPLOYMENT_NAMES: 'd' },
      /required with AZURE_API_KEYS/,
    ],
    [
      'AZURE_DEPLOYMENT_NAMES',
      { UPSTREAM_TYPE: 'azure', AZURE_API_KEYS: 'k', AZURE_ENDPOINT: 'https://r.openai.azure.com' },
      /required with AZURE_API_KEYS/,
    ],
    ['AZURE_DEPLOYMENT_NAMES', { AZURE_DEPLOYMENT_NAMES: 'a=b=c' }, /model=deployment/],
    ['AZURE_API_VERSION', { AZURE_API_VERSION: 'latest' }, /dated version.*or v1/],
    ['PORT', { PORT: '80800' }, /whole number/],
    ['METRICS_PORT', { METRICS_PORT: 'abc' }, /whole number/],
    ['MAX_BODY_BYTES', { MAX_BODY_BYTES: '20MB' }, /whole number/],
    ['SHUTDOWN_GRACE_SECONDS', { SHUTDOWN_GRACE_SECONDS: '60' }, /whole number from 0 to 30/],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }, /one of: fatal, error/],
    ['LOG_PROMPT_BODY', { LOG_PROMPT_BODY: 'maybe' }, /true or false/],
    ['RATE_LIMIT_RPM', { RATE_LIMIT_RPM: '1.5' }, /whole number/],
    ['RATE_LIMIT_TPM', { RATE_LIMIT_TPM: 'lots' }, /whole number/],
    ['RATE_LIMIT_DEFAULT_COMPLETION_TOKENS', { RATE_LIMIT_DEFAULT_COMPLETION_TOKENS: '-5' }, /whole number/],
    ['RATE_LIMIT_FAIL_OPEN', { RATE_LIMIT_FAIL_OPEN: 'sometimes' }, /true or false/],
    ['USAGE_RETENTION_DAYS', { USAGE_RETENTION_DAYS: 'forever' }, /whole number/],
    ['DOMAIN', { DOMAIN: 'https://api.example.com/' }, /host name/],
    ['ACME_EMAIL', { ACME_EMAIL: 'not-an-email' }, /e-mail/],
    [
      'ACME_DIRECTORY',
      { ACME_DIRECTORY: 'http://insecure/dir' },
      /letsencrypt, letsencrypt-staging, self-signed/,
    ],
    ['CERT_RENEW_FRACTION', { CERT_RENEW_FRACTION: '1.5' }, /fraction between 0 and 1/],
  ];
  for (const [variable, env, message] of cases) {
    it(`${variable} ${JSON.stringify(Object.keys(env))}`, () => {
      const found = problems(env);
      assert.equal(found.length, 1, `exactly one problem expected, got ${JSON.stringify(found)}`);
      assert.equal(found[0]?.variable, variable);
      assert.match(found[0]?.message ?? '', message);
      const text = new ConfigError(found).message;
      assert.ok(!text.includes('canary'), 'a value must never be echoed');
      assert.ok(!text.includes(KEY), 'a secret must never be echoed');
    });
  }

  // An upstream refuses such a key in a header on every request; it must fail here, by position.
  for (const [what, bad] of [
    ['a zero-width space', 'sk-canary\u200bkey'],
    ['an inner space', 'sk-canary key'],
  ]) {
    it(`OPENAI_API_KEYS with ${what} in a key`, () => {
      const found = problems({ OPENAI_API_KEYS: `sk-good,${bad}` }, ['upstream']);
      assert.deepEqual(
        found.map((p) => p.variable),
        ['OPENAI_API_KEYS'],
      );
      assert.match(found[0]?.message ?? '', /key 2 of 2 must be printable ASCII without spaces/);
      assert.ok(!new ConfigError(found).message.includes('canary'), 'the key must never be echoed');
    });
  }

  it('AZURE_API_KEYS with a control character in a key', () => {
    const found = problems(
      {
        UPSTREAM_TYPE: 'azure',
        AZURE_ENDPOINT: 'https://r.openai.azure.com',
        AZURE_DEPLOYMENT_NAMES: 'd',
        AZURE_API_KEYS: 'az-canary\u0007,az-ok',
      },
      ['upstream'],
    );
    assert.deepEqual(
      found.map((p) => [p.variable, p.message.startsWith('key 1 of 2')]),
      [['AZURE_API_KEYS', true]],
    );
    assert.ok(!new ConfigError(found).message.includes('canary'));
  });

  it('reports every problem at once', () => {
    const found = problems({ ENCRYPTION_KEY: 'x', PORT: 'y', LOG_LEVEL: 'z' });
    assert.deepEqual(found.map((p) => p.variable).sort(), ['ENCRYPTION_KEY', 'LOG_LEVEL', 'PORT']);
  });
});
