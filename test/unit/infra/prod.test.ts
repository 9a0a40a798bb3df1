import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFlow } from './flow-invariants.ts';
import { containers, describeGraph, type Expected } from './graph-invariants.ts';
import { deploy } from './harness.ts';
import { envOf, fileSecret, inputs, ofType, one, plain, TYPES } from './registrations.ts';

// The `prod` stack as Pulumi.prod.yaml gives it, plus what an operator sets with --secret, and an
// admin allow-list.
const SECRETS = {
  openaiApiKeys: 'sk-prod-canary-one,sk-prod-canary-two',
  encryptionKey: 'c0ffee'.repeat(11).slice(0, 64),
};
const d = await deploy('prod', SECRETS, { adminAllowCidrs: '10.0.0.0/8, 192.168.1.0/24' });

const expected: Expected = {
  stack: 'prod',
  dockerHost: 'ssh://deploy@api.example.com',
  replicas: 3,
  bindAddress: '0.0.0.0',
  httpPort: 80,
  httpsPort: 443,
  acmeDirectory: 'letsencrypt',
  monitoring: false,
  endpoint: 'https://api.example.com',
};
describeGraph(d, expected);
describeFlow(d, expected);

test('prod: a configured secret is used, only the missing ones are generated', () => {
  assert.deepEqual(ofType(d, TYPES.bytes), [], 'encryptionKey came from config');
  assert.equal(ofType(d, TYPES.password).length, 2);
  for (const app of containers(d).app) assert.equal(fileSecret(app, 'ENCRYPTION_KEY'), SECRETS.encryptionKey);
});

test('prod: upstream keys reach only init-upstream-keys, as a secret', () => {
  const hook = one(d, TYPES.command, 'init-upstream-keys');
  assert.equal(
    (plain(hook.raw.environment) as Record<string, string>).OPENAI_API_KEYS,
    SECRETS.openaiApiKeys,
  );
  for (const r of d.resources) {
    if (r === hook) continue;
    assert.ok(!JSON.stringify(plain(r.raw)).includes('sk-prod-canary'), `${r.name} never sees the keys`);
  }
});

test('prod: the app replicas differ from dev where they should', () => {
  const c = containers(d);
  assert.equal(c.app.length, 3);
  assert.equal(envOf(c.app[0] ?? c.certd).RATE_LIMIT_RPM, '120');
  const certd = envOf(c.certd);
  assert.equal(certd.DOMAIN, 'api.example.com');
  assert.equal(certd.ACME_EMAIL, 'ops@example.com');
  assert.match(String(inputs(one(d, TYPES.command, 'create-admin')).create), /--email ops@example\.com/);
  assert.equal(envOf(c.nginx).NGINX_PUBLIC_HTTPS_PORT, '443');
});

test('prod: adminAllowCidrs reaches nginx as NGINX_ADMIN_ALLOW_CIDRS', () => {
  assert.equal(envOf(containers(d).nginx).NGINX_ADMIN_ALLOW_CIDRS, '10.0.0.0/8,192.168.1.0/24');
});
