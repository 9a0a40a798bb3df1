import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowedCpus, coreLayout, parseCpuList } from '../../bench/procs.ts';

// The benchmark pins each part to a CPU. The servers must be alone on theirs whatever the machine,
// and the extra CPUs of a larger machine go first to the load generator, then to the stores.

describe('benchmark CPU layout', () => {
  it('reads the kernel CPU list syntax', () => {
    assert.deepEqual(parseCpuList('0-1'), [0, 1]);
    assert.deepEqual(parseCpuList('0-3,6\n'), [0, 1, 2, 3, 6]);
    assert.deepEqual(parseCpuList('5'), [5]);
    assert.throws(() => parseCpuList('0-1,x'), /not a CPU list/);
  });

  it('keeps the servers alone on two CPUs, everything else on the second', () => {
    assert.deepEqual(coreLayout([0, 1]), { server: 0, fake: 1, loadgen: 1, stores: 1 });
  });

  it('gives the load generator its own CPU on three', () => {
    assert.deepEqual(coreLayout([2, 4, 7]), { server: 2, fake: 7, loadgen: 4, stores: 7 });
  });

  it('gives the fake, the generator and the stores one each on four or more', () => {
    assert.deepEqual(coreLayout([0, 1, 2, 3, 4, 5]), { server: 0, fake: 1, loadgen: 2, stores: 3 });
  });

  it('refuses a single CPU: the server would share it with its load', () => {
    assert.throws(() => coreLayout([0]), /needs two CPUs/);
  });

  it('finds at least the CPU it runs on', () => {
    assert.ok(allowedCpus().length >= 1);
  });
});
