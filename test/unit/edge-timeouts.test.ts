import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DEFAULT_TIMEOUTS } from '../../app/src/upstream/forwarder.ts';

const template = readFileSync(
  new URL('../../nginx/templates/20-app-https.conf.template', import.meta.url),
  'utf8',
);

describe('nginx in front of the app', () => {
  it('waits for an answer longer than the app may spend getting one across failover', () => {
    // Shorter, and nginx answers 504 for a request the app still serves (and the upstream bills).
    const seconds = Number(/^\s*proxy_read_timeout (\d+)s;/m.exec(template)?.[1]);
    assert.ok(seconds > DEFAULT_TIMEOUTS.totalMs / 1000, `proxy_read_timeout ${seconds}s`);
  });
});
