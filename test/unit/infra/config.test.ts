import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import {
  APP_REPLICAS_MAX,
  type ConfigReader,
  DEFAULTS,
  loadSettings,
  publicUrl,
  type Settings,
  settingsProblems,
} from '../../../infra/config.ts';
import { appEnv, checkEnv, SECTIONS, validatedEnv } from '../../../infra/env.ts';
import { readRepoFile } from './registrations.ts';
import { projectFile, readYaml, stackConfig } from './stack-files.ts';

// Pure checks of the program's parts and of the files around it: Pulumi.yaml against the contract
// and the program's defaults, the sections each program loads against the app's own code.

const CONTRACT_KEYS = [
  'dockerHost',
  'domain',
  'acmeEmail',
  'acmeDirectory',
  'upstreamType',
  'openaiApiKeys',
  'openaiBaseUrl',
  'azureEndpoint',
  'azureApiKeys',
  'azureDeploymentNames',
  'azureApiVersion',
  'postgresPassword',
  'redisPassword',
  'encryptionKey',
  // An addition to the contract: ENCRYPTION_KEY_PREVIOUS during a key rotation (docs/runbook.md).
  'encryptionKeyPrevious',
  // An addition to the contract: ACME_CA_FILE for a CA with a private root (docs/deploy-e2e.md).
  'acmeCaBundle',
  'appReplicas',
  'rateLimitRpm',
  'rateLimitTpm',
  'logPromptBody',
  'bindAddress',
  // An addition to the contract: NGINX_ADMIN_ALLOW_CIDRS, which README's edge section offers.
  'adminAllowCidrs',
  'httpPort',
  'httpsPort',
  'images',
  'monitoring',
  'backupSchedule',
  'backupRetention',
];

const SETTINGS: Settings = { ...DEFAULTS, stack: 't', prefix: 'gpt-proxy-t', domain: 'api.example.com' };

describe('Pulumi.yaml', () => {
  const project = projectFile();

  it('is project gpt-proxy, a Node.js program in infra/ run without ts-node', () => {
    assert.equal(project.name, 'gpt-proxy');
    assert.equal(project.main, 'infra/');
    assert.deepEqual(project.runtime, {
      name: 'nodejs',
      options: { typescript: false, nodeargs: '--disable-warning=ExperimentalWarning' },
    });
    // run.js would take package.json's exports or main over the directory's index.ts.
    const pkg = JSON.parse(readRepoFile('package.json')) as Record<string, unknown>;
    assert.equal(pkg.type, 'module');
    assert.equal(pkg.exports, undefined);
    assert.equal(pkg.main, undefined);
  });

  it('declares every contract key, described, and nothing else', () => {
    assert.deepEqual(Object.keys(project.config).sort(), [...CONTRACT_KEYS].sort());
    for (const [key, decl] of Object.entries(project.config)) {
      assert.ok((decl.description ?? '').length > 10, `${key} is described`);
      if (key !== 'images') assert.ok(decl.type, `${key} is typed`);
      assert.notEqual(decl.secret, true, `${key}: a secret with a default fails the CLI's check`);
    }
    assert.equal(project.config.domain?.default, undefined, 'domain is required');
  });

  it('has the same defaults as the program', () => {
    for (const [key, value] of Object.entries(DEFAULTS)) {
      assert.deepEqual(project.config[key]?.default, value, key);
    }
  });

  it("example stacks: dev needs no configuration and holds no secret; prod is remote with Let's Encrypt", () => {
    const dev = stackConfig('dev');
    assert.equal(dev['gpt-proxy:acmeDirectory'], 'self-signed');
    assert.equal(dev['gpt-proxy:dockerHost'], 'unix:///var/run/docker.sock');
    const prod = stackConfig('prod');
    assert.match(prod['gpt-proxy:dockerHost'] ?? '', /^ssh:\/\//);
    assert.equal(prod['gpt-proxy:acmeDirectory'], 'letsencrypt');
    for (const stack of ['dev', 'prod']) {
      const file = readYaml(`Pulumi.${stack}.yaml`) as { config: Record<string, unknown> };
      for (const key of [
        'openaiApiKeys',
        'azureApiKeys',
        'postgresPassword',
        'redisPassword',
        'encryptionKey',
        'encryptionKeyPrevious',
      ]) {
        assert.equal(file.config[`gpt-proxy:${key}`], undefined, `${stack}: ${key} only via --secret`);
      }
    }
  });
});

describe('program sections match what the app loads', () => {
  const listed = (source: string, call: string) => {
    const match = source.match(new RegExp(`${call}\\(\\[([^\\]]*)\\]`));
    assert.ok(match, `${call}([...]) found`);
    return [...(match[1] ?? '').matchAll(/'(\w+)'/g)].map((m) => m[1]);
  };
  it('app/src/main.ts', () =>
    assert.deepEqual(listed(readRepoFile('app/src/main.ts'), 'loadConfigOrExit'), [...SECTIONS.app]));
  for (const [script, key] of [
    ['init-db', 'initDb'],
    ['init-upstream-keys', 'initUpstreamKeys'],
    ['create-admin', 'createAdmin'],
    ['certd', 'certd'],
    ['issue-cert', 'issueCert'],
  ] as const) {
    it(`scripts/${script}.ts`, () => {
      assert.deepEqual(
        listed(readRepoFile(`scripts/${script}.ts`), 'ctx\\.load').sort(),
        [...SECTIONS[key]].sort(),
      );
    });
  }
});

/** A config bag holding `values` as the CLI passes them: strings, objects as JSON. */
function reader(values: Record<string, string>): ConfigReader {
  return {
    get: (key) => values[key],
    getNumber: (key) => (values[key] === undefined ? undefined : Number(values[key])),
    getBoolean: (key) => (values[key] === undefined ? undefined : values[key] === 'true'),
    getObject: <T>(key: string) => (values[key] === undefined ? undefined : (JSON.parse(values[key]) as T)),
  };
}

describe('settings and environments', () => {
  it('fills in defaults, also for the images an override leaves out', () => {
    const s = loadSettings(
      reader({ domain: 'api.example.com', images: '{"postgres":"postgres:17-bookworm"}' }),
      'x',
    );
    assert.equal(s.prefix, 'gpt-proxy-x');
    assert.equal(s.appReplicas, DEFAULTS.appReplicas);
    assert.deepEqual(s.images, { ...DEFAULTS.images, postgres: 'postgres:17-bookworm' });
  });

  it('lists every problem in one error', () => {
    assert.throws(
      () => loadSettings(reader({ appReplicas: '0', httpPort: '443' }), 'x'),
      (err: Error) =>
        /domain: is required/.test(err.message) &&
        /appReplicas/.test(err.message) &&
        /httpsPort/.test(err.message),
    );
  });

  it('refuses bad settings, naming the key and the fix', () => {
    assert.deepEqual(settingsProblems(SETTINGS), []);
    assert.deepEqual(settingsProblems({ ...SETTINGS, appReplicas: APP_REPLICAS_MAX }), []);
    assert.deepEqual(settingsProblems({ ...SETTINGS, appReplicas: APP_REPLICAS_MAX + 1 }), [
      `appReplicas: must be a whole number from 1 to ${APP_REPLICAS_MAX}`,
    ]);
    const problems = settingsProblems({
      ...SETTINGS,
      dockerHost: 'docker.example.com',
      domain: '',
      appReplicas: 0,
      httpsPort: 80,
      images: { ...SETTINGS.images, nginx: 'nginx latest' },
    });
    for (const key of ['dockerHost', 'domain', 'appReplicas', 'httpsPort', 'images.nginx']) {
      assert.ok(
        problems.some((p) => p.startsWith(`${key}:`)),
        key,
      );
    }
  });

  it("accepts image references by Docker's grammar, and refuses what Docker would", () => {
    const problems = (nginx: string) =>
      settingsProblems({ ...SETTINGS, images: { ...SETTINGS.images, nginx } });
    for (const ok of [
      'nginx',
      'nginx:1.28-bookworm',
      'registry.gitlab.com/my_group/postgres:15',
      'postgres:15_custom',
      'postgres:15-Custom',
      'my__team/a.b-c--d:_latest',
      'localhost:5000/nginx',
      'Registry.Example.com:443/team/nginx:1.28',
      '[::1]:5000/nginx:1',
      `nginx@sha256:${'a'.repeat(64)}`,
      `nginx:1.28@sha256:${'b'.repeat(64)}`,
    ]) {
      assert.deepEqual(problems(ok), [], ok);
    }
    for (const bad of [
      'Nginx:1.28',
      'team/Nginx',
      'nginx latest',
      'nginx:',
      'nginx:-1',
      `nginx:${'a'.repeat(129)}`,
      'team//nginx',
      'team/_nginx',
      'nginx_:1',
      '/nginx',
      'nginx@sha256:abc',
      '',
    ]) {
      assert.deepEqual(
        problems(bad),
        ['images.nginx: must be an image reference like postgres:15-bookworm'],
        JSON.stringify(bad),
      );
    }
  });

  it('adminAllowCidrs: addresses or CIDR networks, comma-separated, handed to nginx as one line', () => {
    const load = (adminAllowCidrs: string) =>
      loadSettings(reader({ domain: 'api.example.com', adminAllowCidrs }), 'x').adminAllowCidrs;
    assert.equal(load(''), '');
    assert.equal(
      load(' 10.0.0.0/8, 192.168.1.0/24,\n203.0.113.7,fd00::/8 ,'),
      '10.0.0.0/8,192.168.1.0/24,203.0.113.7,fd00::/8',
    );
    const fix =
      'give addresses or CIDR networks separated by commas, e.g. 10.0.0.0/8,192.168.1.0/24 (or leave it empty for no limit)';
    for (const [bad, item] of [
      ['10.0.0.0/33', 1],
      ['10.0.0.0/8,fd00::/129', 2],
      ['10.0.0.0/8,192.168.1.0/24,office', 3],
      ['10.0.0/8', 1],
      ['10.0.0.0/8/8', 1],
      ['10.0.0.0/', 1],
      ['10.0.0.0 192.168.0.0/16', 1],
      ['all', 1],
      // An address node takes but nginx's start-up check (hex digits . : /) does not: a zone id.
      ['10.0.0.0/8,fe80::1%eth0', 2],
      ['fe80::1%eth0/64', 1],
    ] as const) {
      assert.throws(
        () => load(bad),
        (err: Error) => err.message.includes(`adminAllowCidrs: item ${item} is not a network: ${fix}`),
        bad,
      );
    }
  });

  it('the public URL carries the port only when it is not 443', () => {
    assert.equal(publicUrl(SETTINGS), 'https://api.example.com');
    assert.equal(publicUrl({ ...SETTINGS, domain: 'localhost', httpsPort: 8443 }), 'https://localhost:8443');
  });

  it('an environment the app would refuse fails the program early, naming variables, never values', () => {
    const secrets = {
      postgresPassword: pulumi.secret('pw'),
      redisPassword: pulumi.secret('pw'),
      encryptionKey: pulumi.secret('k'),
      encryptionKeyPrevious: pulumi.secret(''),
      openaiApiKeys: pulumi.secret(''),
      azureApiKeys: pulumi.secret(''),
    };
    const env = appEnv({ ...SETTINGS, openaiBaseUrl: 'ftp://not-http.example', rateLimitRpm: -1 }, secrets);
    assert.throws(
      () => validatedEnv('app', env, SECTIONS.app),
      (err: Error) =>
        /OPENAI_BASE_URL/.test(err.message) &&
        /RATE_LIMIT_RPM/.test(err.message) &&
        !/not-http/.test(err.message),
    );
  });

  it('the check on real values refuses a bad secret without echoing it', () => {
    assert.throws(
      () => checkEnv('app', { POSTGRES_PASSWORD: 'x', ENCRYPTION_KEY: 'short-canary-key' }, ['encryption']),
      (err: Error) => /ENCRYPTION_KEY/.test(err.message) && !err.message.includes('short-canary-key'),
    );
  });
});
