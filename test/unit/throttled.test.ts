import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { throttledPerKey } from '../../app/src/log/throttled.ts';

describe('throttledPerKey', () => {
  it('lets one line per key through per interval: one fault repeating does not hide another', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      const seen: string[] = [];
      const log = throttledPerKey(
        (id: number, what: string) => `${id}/${what}`,
        (id, what) => seen.push(`${id}/${what}`),
        60_000,
      );
      log(1, 'a');
      log(1, 'a');
      log(2, 'a');
      log(1, 'b');
      mock.timers.tick(59_999);
      log(1, 'a');
      mock.timers.tick(1);
      log(1, 'a');
      assert.deepEqual(seen, ['1/a', '2/a', '1/b', '1/a']);
    } finally {
      mock.timers.reset();
    }
  });
});
