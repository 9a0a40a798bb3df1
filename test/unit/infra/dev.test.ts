import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFlow } from './flow-invariants.ts';
import { containers, describeGraph, type Expected } from './graph-invariants.ts';
import { deploy } from './harness.ts';
import { envOf, inputs, ofType, readRepoFile, TYPES } from './registrations.ts';

// The `dev` stack exactly as Pulumi.dev.yaml gives it: local Docker, self-signed, nothing configured.
const d = await deploy('dev');

const expected: Expected = {
  stack: 'dev',
  dockerHost: 'unix:///var/run/docker.sock',
  replicas: 1,
  bindAddress: '127.0.0.1',
  httpPort: 8080,
  httpsPort: 8443,
  acmeDirectory: 'self-signed',
  monitoring: false,
  endpoint: 'https://localhost:8443',
};
describeGraph(d, expected);
describeFlow(d, expected);

test('dev: every internal secret is generated, once, by @pulumi/random', () => {
  assert.deepEqual(
    ofType(d, TYPES.password)
      .map((r) => r.name)
      .sort(),
    ['secrets-postgresPassword', 'secrets-redisPassword'],
  );
  const [key] = ofType(d, TYPES.bytes);
  assert.equal(key?.name, 'secrets-encryptionKey');
  assert.equal(key && inputs(key).length, 32, '32 bytes, 64 hex characters');
  for (const r of ofType(d, TYPES.password)) assert.equal(inputs(r).special, false);
});

test('dev: no admin allow-list, so nginx is not told one (nor replaced for it on upgrade)', () => {
  assert.equal(envOf(containers(d).nginx).NGINX_ADMIN_ALLOW_CIDRS, undefined);
});

test("the runbook's printenv asks a replica only for variables the stack gives it", () => {
  // printenv prints nothing for an unset variable: one the stack leaves to its default would look empty.
  const env = envOf(containers(d).app[0] ?? containers(d).certd);
  const asked = [
    ...readRepoFile('docs/runbook.md').matchAll(/docker exec "\$APP" printenv((?: [A-Z_]+)+)/g),
  ].flatMap((m) => (m[1] as string).trim().split(' '));
  assert.ok(asked.length > 0, 'the runbook has printenv lines');
  assert.deepEqual(
    asked.filter((name) => !(name in env)),
    [],
  );
});

test('dev: the proxy gets the default upstream and no certificate settings', () => {
  const env = envOf(containers(d).app[0] ?? containers(d).certd);
  assert.equal(env.UPSTREAM_TYPE, 'openai');
  assert.equal(env.DOMAIN, undefined);
});
