// The applier without an engine: the real program's capture passes its checks; what it cannot
// translate is refused before anything is touched, naming the resource and the input; output
// references resolve only once their resource is applied; dependencies on components expand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DockerCli } from '../docker/cli.ts';
import { applyCapture, checkCapture } from './applier/apply.ts';
import { captureProgram, type StackSettings } from './applier/capture.ts';
import { Engine } from './applier/engine.ts';
import { customDependencies } from './applier/graph.ts';
import { ApplierRefusal } from './applier/inputs.ts';
import { outputRef, resolveRefs } from './applier/refs.ts';
import { type Capture, type CapturedResource, emptyState, type JsonObject } from './applier/types.ts';

const CONTAINER = 'docker:index/container:Container';
const PROVIDER = 'urn:pulumi:t::gpt-proxy::pulumi:providers:docker::p';

function resource(name: string, inputs: JsonObject, extra: Partial<CapturedResource> = {}): CapturedResource {
  return {
    ...{
      urn: `urn:pulumi:t::gpt-proxy::${CONTAINER}::${name}`,
      type: CONTAINER,
      name,
      custom: true,
      parent: '',
    },
    ...{
      provider: PROVIDER,
      dependencies: [],
      deleteBeforeReplace: false,
      ignoreChanges: [],
      retainOnDelete: false,
    },
    inputs,
    ...extra,
  };
}

const capture = (resources: CapturedResource[], invokes: Capture['invokes'] = []): Capture => ({
  stack: 't',
  resources,
  invokes,
  outputs: {},
});

function settings(config: StackSettings['config']): StackSettings {
  return {
    stack: 'e2e',
    seed: 'seed',
    secrets: {},
    config: { dockerHost: 'unix:///nonexistent/docker.sock', domain: 'api.example.test', ...config },
  };
}

describe('applier checks', () => {
  it('takes every resource of the program as the e2e stack configures it', async () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';
    const config = { bindAddress: '127.0.0.1', acmeCaBundle: pem, acmeDirectory: 'https://pebble:14000/dir' };
    checkCapture(await captureProgram(settings(config)));
  });

  it('refuses ports published beyond 127.0.0.1 before touching the engine', async () => {
    const refusing = await captureProgram(settings({ bindAddress: '0.0.0.0' }));
    const untouchable = {} as DockerCli; // any use would throw
    const ctx = {
      engine: new Engine('unix:///nonexistent/docker.sock'),
      cli: untouchable,
      hookEnv: {},
      workDir: '/nonexistent',
      publishOn: '127.0.0.1',
      maxWaitMs: 1_000,
      onApplied: () => assert.fail('nothing may be applied'),
    };
    await assert.rejects(
      applyCapture(refusing, emptyState(), ctx),
      (err: Error) =>
        err instanceof ApplierRefusal &&
        /Container "nginx-container": input `ports\[0\]\.ip`/.test(err.message),
    );
  });

  const refusals: Array<[string, Capture, RegExp]> = [
    [
      'an input it does not know',
      capture([resource('c', { image: 'i', privileged: true })]),
      /"c": input `privileged`/,
    ],
    [
      'a nested one',
      capture([resource('c', { image: 'i', networksAdvanced: [{ name: 'n', ipv4Address: '10.0.0.9' }] })]),
      /"c": input `networksAdvanced\[0\]\.ipv4Address` is not translated/,
    ],
    [
      'a wrong type',
      capture([resource('c', { image: 'i', envs: 'A=1' })]),
      /"c": input `envs` is not a list/,
    ],
    [
      'a resource type',
      capture([resource('v', {}, { type: 'docker:index/service:Service' })]),
      /type is not translated/,
    ],
    [
      'a nested ignoreChanges path',
      capture([resource('c', { image: 'i' }, { ignoreChanges: ['healthcheck.tests'] })]),
      /`healthcheck\.tests` in ignoreChanges/,
    ],
    [
      'an invoke',
      capture([], [{ token: 'docker:index/getNetwork:getNetwork', inputs: {} }]),
      /getNetwork is not translated/,
    ],
  ];
  for (const [what, refused, message] of refusals) {
    it(`refuses ${what}, naming resource and input`, () => {
      assert.throws(
        () => checkCapture(refused),
        (err: Error) => err instanceof ApplierRefusal && message.test(err.message),
      );
    });
  }
});

describe('applier references and order', () => {
  it('resolves an output reference only once its resource is applied', () => {
    const ref = outputRef('docker:index/image:Image', 'app', 'repoDigest');
    const inputs = { image: ref, envs: [`X=${ref}`] };
    assert.deepEqual(
      resolveRefs(inputs, () => 'sha256:abc', 'c'),
      { image: 'sha256:abc', envs: ['X=sha256:abc'] },
    );
    assert.throws(
      () => resolveRefs(inputs, () => undefined, 'c'),
      /c: input `image` needs repoDigest of .* "app"/,
    );
  });

  it('expands a dependency on a component into its custom resources, and adds the provider', () => {
    const component = { ...resource('comp', {}), urn: 'urn:comp', type: 'x:Component', custom: false };
    const child = { ...resource('child', {}), urn: 'urn:child', parent: 'urn:comp' };
    const user = { ...resource('user', {}), urn: 'urn:user', dependencies: ['urn:comp'] };
    const provider = { ...resource('p', {}), urn: PROVIDER, type: 'pulumi:providers:docker', provider: '' };
    const deps = customDependencies([provider, component, child, user]);
    assert.deepEqual(deps.get('urn:user'), ['urn:child', PROVIDER]);
  });
});
