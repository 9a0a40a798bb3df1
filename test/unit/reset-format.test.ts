import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReset, parseReset } from '../../app/src/ratelimit/reset-format.ts';

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

describe('reading x-ratelimit-reset-* values', () => {
  it("reads OpenAI's (Go duration) format, fractions too", () => {
    const cases: Array<[string, number]> = [
      ['120ms', 120],
      ['0s', 0],
      ['1s', 1000],
      ['6m0s', 360_000],
      ['1h2m3s', 3_723_000],
      ['33.023s', 33_023],
      ['2m52.8s', 172_800],
      ['1.5ms', 1.5],
      ['500us', 0.5],
      [' 7s ', 7000],
    ];
    for (const [text, ms] of cases) assert.equal(parseReset(text), ms, text);
  });

  it('refuses what is not such a duration: no unit, a date, junk', () => {
    for (const text of ['', '64', '1.s', 's', '1d', '-1s', '6m0', '2026-03-29T14:00:32Z', '1s junk']) {
      assert.equal(parseReset(text), undefined, text);
    }
  });

  it('reads back what formatReset writes', () => {
    for (const ms of [0, 1, 120, 999, 1000, 59_000, 60_000, 360_000, 3_723_000]) {
      assert.equal(parseReset(formatReset(ms)), ms, String(ms));
    }
  });
});
