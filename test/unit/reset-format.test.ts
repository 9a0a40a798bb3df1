import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReset } from '../../app/src/ratelimit/reset-format.ts';

describe('x-ratelimit-reset-* values', () => {
  it('writes them as OpenAI does, rounded up', () => {
    assert.equal(formatReset(0), '0ms');
    assert.equal(formatReset(-5), '0ms');
    assert.equal(formatReset(119.2), '120ms');
    assert.equal(formatReset(1000), '1s');
    assert.equal(formatReset(1000.5), '2s');
    assert.equal(formatReset(360_000), '6m0s');
    assert.equal(formatReset(3_723_000), '1h2m3s');
  });

  it('a value just under a second rounds up to 1s, never to "1000ms"', () => {
    assert.equal(formatReset(999), '999ms');
    assert.equal(formatReset(999.4), '1s');
    assert.equal(formatReset(999.999), '1s');
  });
});
