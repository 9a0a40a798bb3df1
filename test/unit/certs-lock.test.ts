import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DirLock } from '../../app/src/certs/lock.ts';
import { registerProcess, registerTempDir, unregisterProcess, waitFor } from '../helpers/processes.ts';

const LOCK_MODULE = new URL('../../app/src/certs/lock.ts', import.meta.url).href;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'certs-lock-'));
  registerTempDir(dir);
  return dir;
}

/** A separate process that takes the lock, notes start/end in `journal`, holds it `holdMs`. */
function contender(lockPath: string, journal: string, holdMs: number) {
  const code = `
    import { appendFileSync } from 'node:fs';
    import { DirLock } from ${JSON.stringify(LOCK_MODULE)};
    const lock = new DirLock(${JSON.stringify(lockPath)});
    const handle = await lock.acquire('test', { deadline: Date.now() + 30000, pollMs: 20 });
    if (!handle) process.exit(3);
    appendFileSync(${JSON.stringify(journal)}, 'start ' + process.pid + '\\n');
    console.log('acquired');
    await new Promise((r) => setTimeout(r, ${holdMs}));
    appendFileSync(${JSON.stringify(journal)}, 'end ' + process.pid + '\\n');
    await handle.release();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (child.pid) registerProcess(child.pid, 'lock contender');
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (child.pid) unregisterProcess(child.pid);
      resolve(code);
    }),
  );
  return { child, exited, acquired: () => out.includes('acquired') };
}

describe('DirLock', () => {
  it('lets one process at a time hold it', async () => {
    const dir = tempDir();
    const journal = join(dir, 'journal');
    writeFileSync(journal, '');
    const children = Array.from({ length: 4 }, () => contender(join(dir, '.lock'), journal, 200));
    assert.deepEqual(await Promise.all(children.map((c) => c.exited)), [0, 0, 0, 0]);
    const lines = readFileSync(journal, 'utf8').trim().split('\n');
    assert.equal(lines.length, 8);
    for (let i = 0; i < lines.length; i += 2) {
      const [start, end] = [lines[i]?.split(' '), lines[i + 1]?.split(' ')];
      assert.equal(start?.[0], 'start');
      assert.deepEqual(end, ['end', start?.[1]], `no overlap: ${lines.join(', ')}`);
    }
    assert.equal(existsSync(join(dir, '.lock')), false, 'released');
  });

  it('is taken over at once from a holder on this host that died', async () => {
    const dir = tempDir();
    const holder = contender(join(dir, '.lock'), join(dir, 'journal'), 60_000);
    await waitFor(holder.acquired, { timeoutMs: 10_000, what: 'the holder' });
    const lock = new DirLock(join(dir, '.lock'));
    const held = await lock.tryAcquire('test');
    assert.ok('heldBy' in held);
    assert.equal(held.heldBy?.pid, holder.child.pid);
    holder.child.kill('SIGKILL');
    await holder.exited;
    const after = await lock.tryAcquire('test');
    assert.ok('acquired' in after, 'a dead holder does not block');
    await after.acquired.release();
  });

  it('waits out a holder on another host until its heartbeat is stale', async () => {
    const dir = tempDir();
    const path = join(dir, '.lock');
    const foreign = {
      pid: 1,
      hostname: 'certd-container',
      token: 'abc',
      purpose: 'certd',
      since: new Date().toISOString(),
    };
    writeFileSync(path, JSON.stringify(foreign));
    const lock = new DirLock(path, { staleMs: 5_000 });
    const held = await lock.tryAcquire('issue-cert');
    assert.deepEqual(held, { heldBy: foreign });
    const past = new Date(Date.now() - 6_000);
    utimesSync(path, past, past);
    const taken = await lock.tryAcquire('issue-cert');
    assert.ok('acquired' in taken);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).purpose, 'issue-cert');
    await taken.acquired.release();
  });

  it('treats a lock naming our own PID but not our token as left by an earlier process', async () => {
    const dir = tempDir();
    const path = join(dir, '.lock');
    const earlier = { pid: process.pid, hostname: hostname(), token: 'earlier', purpose: 'certd', since: '' };
    writeFileSync(path, JSON.stringify(earlier));
    const taken = await new DirLock(path).tryAcquire('certd');
    assert.ok('acquired' in taken);
    // ...while a lock this process holds is not taken twice.
    assert.ok('heldBy' in (await new DirLock(path).tryAcquire('certd')));
    await taken.acquired.release();
  });

  it('touches the file while held, notices when it was broken, and then leaves the new one alone', async () => {
    const dir = tempDir();
    const path = join(dir, '.lock');
    const lock = new DirLock(path, { heartbeatMs: 50 });
    const taken = await lock.tryAcquire('certd');
    assert.ok('acquired' in taken);
    const past = new Date(Date.now() - 60_000);
    utimesSync(path, past, past);
    await waitFor(() => statSync(path).mtimeMs > Date.now() - 10_000, {
      timeoutMs: 2_000,
      what: 'heartbeat',
    });
    writeFileSync(
      path,
      JSON.stringify({ pid: 1, hostname: 'elsewhere', token: 'theirs', purpose: 'x', since: '' }),
    );
    await waitFor(() => taken.acquired.lost, { timeoutMs: 2_000, what: 'lost' });
    await taken.acquired.release();
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).token, 'theirs');
  });

  it('keeps its heartbeat when the file is missing for a moment (a contender putting it back)', async () => {
    const dir = tempDir();
    const path = join(dir, '.lock');
    const lock = new DirLock(path, { heartbeatMs: 50 });
    const taken = await lock.tryAcquire('certd');
    assert.ok('acquired' in taken);
    // As #breakStale does with a lock that turns out to be live: renamed aside, then put back.
    renameSync(path, `${path}.aside`);
    await new Promise((resolve) => setTimeout(resolve, 200)); // a few beats find no file
    renameSync(`${path}.aside`, path);
    const past = new Date(Date.now() - 60_000);
    utimesSync(path, past, past);
    await waitFor(() => statSync(path).mtimeMs > Date.now() - 10_000, {
      timeoutMs: 2_000,
      what: 'the heartbeat touching the file again',
    });
    assert.equal(taken.acquired.lost, false);
    assert.equal(await taken.acquired.stillHeld(), true);
    await taken.acquired.release();
    assert.equal(existsSync(path), false, 'released as its own');
  });

  it('gives up waiting at the deadline and says who holds it', async () => {
    const dir = tempDir();
    const lock = new DirLock(join(dir, '.lock'));
    const first = await lock.tryAcquire('certd');
    assert.ok('acquired' in first);
    const seen: string[] = [];
    const started = Date.now();
    const second = await lock.acquire('issue-cert', {
      deadline: Date.now() + 300,
      pollMs: 50,
      onWait: (holder) => seen.push(holder?.purpose ?? '?'),
    });
    assert.equal(second, undefined);
    assert.ok(Date.now() - started < 1_000);
    assert.deepEqual(seen, ['certd']);
    await first.acquired.release();
  });
});
