import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AzureAdapter } from '../../app/src/upstream/azure-adapter.ts';
import { parseDeployments } from '../../app/src/upstream/deployments.ts';
import type { UpstreamKey } from '../../app/src/upstream/types.ts';

const deployments = parseDeployments(['gpt-35-turbo', 'gpt-4o=prod-4o', 'text-embedding-3-small']);
if ('error' in deployments) throw new Error(deployments.error);
const key: UpstreamKey = {
  id: 1,
  provider: 'azure',
  secret: 'azure-secret',
  endpoint: 'https://res.openai.azure.com',
  deployments,
};
const body = Buffer.from('{"model":"gpt-4o","messages":[]}');

describe('AzureAdapter', () => {
  it('dated versions use the deployments path and the api-key header, body untouched', () => {
    const t = new AzureAdapter('2024-10-21').target('chat/completions', 'gpt-4o', key, body);
    assert.deepEqual(t, {
      origin: 'https://res.openai.azure.com',
      path: '/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21',
      headers: { 'api-key': 'azure-secret' },
      deployment: 'prod-4o',
    });
  });

  it('marks the dated versions that refuse stream_options (before 2024-09-01-preview)', () => {
    const refuses = (version: string) =>
      new AzureAdapter(version).target('chat/completions', 'gpt-4o', key, body)?.refusesStreamOptions ===
      true;
    for (const version of ['2023-05-15', '2024-02-01', '2024-06-01', '2024-08-01-preview']) {
      assert.equal(refuses(version), true, version);
    }
    for (const version of ['2024-09-01-preview', '2024-10-21', '2025-04-01-preview', 'v1']) {
      assert.equal(refuses(version), false, version);
    }
  });

  it('maps the OpenAI spelling of a bare deployment name', () => {
    const t = new AzureAdapter('2024-10-21').target('chat/completions', 'gpt-3.5-turbo', key, body);
    assert.equal(t?.path, '/openai/deployments/gpt-35-turbo/chat/completions?api-version=2024-10-21');
  });

  it('v1 uses /openai/v1 with the deployment as the body model', () => {
    const t = new AzureAdapter('v1').target(
      'embeddings',
      'text-embedding-3-small',
      key,
      Buffer.from('{"model":"text-embedding-3-small","input":"x"}'),
    );
    assert.equal(t?.path, '/openai/v1/embeddings');
    const t2 = new AzureAdapter('v1').target('chat/completions', 'gpt-4o', key, body);
    assert.deepEqual(JSON.parse(String(t2?.body)), { model: 'prod-4o', messages: [] });
  });

  it('responses always go to the v1 surface, which alone serves them', () => {
    const input = Buffer.from('{"model":"gpt-4o","input":"hi"}');
    for (const version of ['2024-10-21', 'v1']) {
      const t = new AzureAdapter(version).target('responses', 'gpt-4o', key, input);
      assert.equal(t?.path, '/openai/v1/responses');
      assert.deepEqual(JSON.parse(String(t?.body)), { model: 'prod-4o', input: 'hi' });
    }
  });

  it('serves only its deployments, and lists models on both surfaces', () => {
    assert.equal(new AzureAdapter('2024-10-21').target('chat/completions', 'gpt-5', key, body), null);
    assert.deepEqual(new AzureAdapter('2024-10-21').servedModels(key), [
      'gpt-35-turbo',
      'gpt-3.5-turbo',
      'gpt-4o',
      'text-embedding-3-small',
    ]);
    assert.equal(
      new AzureAdapter('2024-10-21').target('models', undefined, key, undefined)?.path,
      '/openai/models?api-version=2024-10-21',
    );
    assert.equal(
      new AzureAdapter('v1').target('models', undefined, key, undefined)?.path,
      '/openai/v1/models',
    );
  });
});
