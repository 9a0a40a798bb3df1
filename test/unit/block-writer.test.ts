import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BlockWriter } from '../../app/src/log/block-writer.ts';

const line = (i: number) => `{"i":${i},"pad":"${'x'.repeat(180)}"}\n`;
const dir = mkdtempSync(join(tmpdir(), 'block-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('BlockWriter (the log destination)', () => {
  it('holds lines until a block has gathered or flush() is called, then writes them in order', async () => {
    const file = join(dir, 'quiet.log');
    const fd = openSync(file, 'w');
    try {
      const w = new BlockWriter(fd, 1_000);
      for (let i = 0; i < 3; i++) w.write(line(i));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(readFileSync(file, 'utf8'), '', 'under a block: nothing written yet');
      await w.drained();
      assert.equal(readFileSync(file, 'utf8'), [0, 1, 2].map(line).join(''));
      for (let i = 3; i < 20; i++) w.write(line(i)); // over a block: written without a flush
      await new Promise((r) => setTimeout(r, 50));
      const text = readFileSync(file, 'utf8');
      assert.ok(text.length >= 1_000 && text.startsWith([0, 1, 2, 3, 4].map(line).join('')));
      await w.drained();
      assert.equal(readFileSync(file, 'utf8'), Array.from({ length: 20 }, (_, i) => line(i)).join(''));
    } finally {
      closeSync(fd);
    }
  });

  it('drained() waits out a full pipe, lines written meanwhile included', async () => {
    // `cat` starts reading after 300 ms; its stdin is a non-blocking socket pair that holds far
    // less than 4 MB. Right after drained() resolves it is closed: any line the writer still held
    // would be missing.
    const cat = spawn('sh', ['-c', 'sleep 0.3; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const out: Buffer[] = [];
      cat.stdout.on('data', (d: Buffer) => out.push(d));
      const fd = (cat.stdin as unknown as { _handle: { fd: number } })._handle.fd;
      const w = new BlockWriter(fd);
      for (let i = 0; i < 20_000; i++) w.write(line(i)); // ~4 MB: the socket pair is full long before
      const drained = w.drained();
      for (let i = 20_000; i < 21_000; i++) w.write(line(i)); // queued behind the retry
      await drained;
      cat.stdin.end();
      await new Promise((r) => cat.once('close', r));
      assert.equal(
        Buffer.concat(out).toString('utf8'),
        Array.from({ length: 21_000 }, (_, i) => line(i)).join(''),
      );
    } finally {
      cat.kill();
    }
  });

  it('loses nothing through a full non-blocking pipe, and writes the rest at exit', async () => {
    // The child makes its stdout pipe non-blocking (as a pipe handle does) and writes ~4 MB while
    // the parent is not reading: the pipe fills (EAGAIN, partial writes, retries on a timer). It
    // exits as soon as it has written, with most lines still queued: flushSync must wait out the
    // full pipe at exit.
    const script = `
      import { Socket } from 'node:net';
      import { BlockWriter } from ${JSON.stringify(new URL('../../app/src/log/block-writer.ts', import.meta.url).href)};
      new Socket({ fd: 1, readable: false }).unref();
      const w = new BlockWriter(1);
      process.once('exit', () => w.flushSync());
      const line = ${line.toString()};
      for (let i = 0; i < 20000; i++) {
        w.write(line(i));
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
      process.stderr.write('written\\n');
      process.exit(0);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const chunks: Buffer[] = [];
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.stdout.pause();
      await new Promise((r) => setTimeout(r, 500));
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.stdout.resume();
      const code = await new Promise((resolve, reject) => {
        const late = setTimeout(() => reject(new Error('the child did not finish in 20 s')), 20_000);
        child.once('close', (c) => {
          clearTimeout(late);
          resolve(c);
        });
      });
      assert.equal(code, 0, stderr);
      assert.equal(stderr, 'written\n');
      const lines = Buffer.concat(chunks).toString('utf8').split('\n');
      assert.equal(lines.pop(), '');
      assert.equal(lines.length, 20_000);
      lines.forEach((l, i) => {
        if (`${l}\n` !== line(i)) assert.fail(`line ${i} is ${l.slice(0, 40)}…`);
      });
    } finally {
      child.kill();
    }
  });
});
