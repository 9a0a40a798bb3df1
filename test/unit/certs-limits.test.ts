import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import acme from 'acme-client';
import { configureAcmeHttp } from '../../app/src/certs/acme-http.ts';
import { classifyError, OrderError, parseRetryAfter, storageError } from '../../app/src/certs/errors.ts';
import {
  emptyLedger,
  orderGate,
  readLedger,
  recordFailure,
  recordSuccess,
  writeLedger,
} from '../../app/src/certs/ledger.ts';
import { type Attempt, backoffDelayMs, budgetBlockedUntil, limitsFor } from '../../app/src/certs/limits.ts';
import { createLogger } from '../../app/src/log/logger.ts';
import { freePort, registerTempDir } from '../helpers/processes.ts';

const LE = 'https://acme-v02.api.letsencrypt.org/directory';
const LE_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';
const OTHER = 'https://127.0.0.1:14000/dir';
const D = 'api.example.com';
const HOUR = 3_600_000;
const t0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const ISSUED = { serial: '03A1', directoryUrl: LE };
const policy = { minMs: 60_000, maxMs: 6 * HOUR };

describe('backoff', () => {
  it('doubles from the minimum up to the cap, jittered between half and all of it', () => {
    const table: Array<[number, number]> = [
      [1, 60_000],
      [2, 120_000],
      [3, 240_000],
      [9, 6 * HOUR], // 60 s * 2^8 = 4.3 h ... then capped
      [30, 6 * HOUR],
    ];
    for (const [failures, full] of table) {
      const expected = Math.min(full, 60_000 * 2 ** (failures - 1), 6 * HOUR);
      assert.equal(
        backoffDelayMs(failures, policy, 0, () => 1),
        expected,
        `failures=${failures}`,
      );
      assert.equal(
        backoffDelayMs(failures, policy, 0, () => 0),
        expected / 2,
        `failures=${failures}`,
      );
    }
  });

  it('never retries before the CA says', () => {
    assert.equal(
      backoffDelayMs(1, policy, 3 * HOUR, () => 0.5),
      3 * HOUR,
    );
  });
});

describe("the CA's limits", () => {
  const ok = (ms: number): Attempt => ({ at: at(ms).toISOString(), domain: D, ok: true });
  const failed = (ms: number, reason = 'challenge'): Attempt => ({
    at: at(ms).toISOString(),
    domain: D,
    ok: false,
    reason,
  });

  it("applies Let's Encrypt's limits to its production and staging directories only", () => {
    assert.equal(limitsFor(LE).length, 3);
    assert.equal(limitsFor(LE_STAGING).length, 3);
    assert.equal(limitsFor(OTHER).length, 1);
  });

  it('allows no sixth identical certificate within 7 days', () => {
    const five = [0, 1, 2, 3, 4].map((d) => ok(d * 24 * HOUR));
    const blocked = budgetBlockedUntil(five, limitsFor(LE), D, at(5 * 24 * HOUR));
    assert.deepEqual(blocked, { until: at(168 * HOUR), limit: 'duplicate certificates per 7 days' });
    assert.equal(budgetBlockedUntil(five.slice(1), limitsFor(LE), D, at(5 * 24 * HOUR)), undefined);
    assert.equal(budgetBlockedUntil(five, limitsFor(LE), 'www.example.com', at(5 * 24 * HOUR)), undefined);
    assert.equal(budgetBlockedUntil(five, limitsFor(OTHER), D, at(5 * 24 * HOUR)), undefined);
    const issuedNotInstalled = [...five.slice(1), { ...failed(0, 'storage'), issued: true }];
    assert.ok(
      budgetBlockedUntil(issuedNotInstalled, limitsFor(LE), D, at(HOUR)),
      'issued counts even if not installed',
    );
  });

  it('allows no sixth failed validation within an hour; other failures do not count', () => {
    const five = [0, 1, 2, 3, 4].map((m) => failed(m * 60_000));
    assert.deepEqual(budgetBlockedUntil(five, limitsFor(LE), D, at(5 * 60_000)), {
      until: at(HOUR),
      limit: 'failed authorizations per hour',
    });
    const unreachable = [0, 1, 2, 3, 4].map((m) => failed(m * 60_000, 'unreachable'));
    assert.equal(budgetBlockedUntil(unreachable, limitsFor(LE), D, at(5 * 60_000)), undefined);
    assert.equal(budgetBlockedUntil(five, limitsFor(LE), D, at(HOUR + 1)), undefined);
  });

  it('caps new orders at 300 per 3 hours for any CA', () => {
    const many = Array.from({ length: 300 }, (_, i) => failed(i * 1000, 'unreachable'));
    assert.equal(
      budgetBlockedUntil(many, limitsFor(OTHER), D, at(300_000))?.until.getTime(),
      at(3 * HOUR).getTime(),
    );
  });
});

describe('ledger', () => {
  it('records failures with backoff and Retry-After, and a success clears them', () => {
    let ledger = recordFailure(
      emptyLedger(),
      D,
      { reason: 'unreachable', message: 'refused' },
      policy,
      t0,
      () => 1,
    );
    assert.equal(ledger.consecutiveFailures, 1);
    assert.equal(ledger.backoffUntil, at(60_000).toISOString());
    assert.equal(ledger.caRetryAfter, undefined);
    ledger = recordFailure(
      ledger,
      D,
      { reason: 'rate_limited', message: '429', retryAfterMs: HOUR },
      policy,
      t0,
      () => 1,
    );
    assert.equal(ledger.consecutiveFailures, 2);
    assert.equal(ledger.backoffUntil, at(HOUR).toISOString());
    assert.equal(ledger.caRetryAfter, at(HOUR).toISOString());
    assert.equal(ledger.lastError, '429');
    const cleared = recordSuccess(ledger, D, at(2 * HOUR), ISSUED);
    assert.equal(cleared.consecutiveFailures, 0);
    assert.deepEqual(cleared.issued, ISSUED);
    const failedLater = recordFailure(cleared, D, { reason: 'unreachable', message: 'x' }, policy, t0);
    assert.deepEqual(failedLater.issued, ISSUED, 'a failed order leaves the certificate in place');
    assert.equal(cleared.backoffUntil, undefined);
    assert.equal(cleared.lastSuccessAt, at(2 * HOUR).toISOString());
    assert.equal(cleared.attempts.length, 3);
  });

  it('gates orders: backoff, Retry-After (binding on everyone) and limits', () => {
    const query = { domain: D, directoryUrl: LE, now: at(1000) };
    assert.equal(orderGate(emptyLedger(), query), undefined);
    const backedOff = recordFailure(
      emptyLedger(),
      D,
      { reason: 'unreachable', message: 'x' },
      policy,
      t0,
      () => 1,
    );
    assert.deepEqual(orderGate(backedOff, query), { until: at(60_000), why: 'backoff after 1 failure(s)' });
    assert.equal(orderGate(backedOff, { ...query, now: at(60_000) }), undefined);
    // An explicit run (issue-cert) ignores backoff from failures before it started...
    assert.equal(orderGate(backedOff, { ...query, backoffFrom: at(500) }), undefined);
    // ...but not the CA's Retry-After.
    const limited = recordFailure(
      emptyLedger(),
      D,
      { reason: 'rate_limited', message: 'x', retryAfterMs: HOUR },
      policy,
      t0,
    );
    assert.deepEqual(orderGate(limited, { ...query, backoffFrom: at(500) }), {
      until: at(HOUR),
      why: "the CA's Retry-After",
    });
  });

  it('persists atomically, drops attempts older than 8 days, and starts empty from a broken file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'certs-ledger-'));
    registerTempDir(dir);
    const path = join(dir, 'orders.json');
    assert.deepEqual(await readLedger(path), emptyLedger());
    const old = recordSuccess(emptyLedger(), D, t0, undefined);
    await writeLedger(path, recordSuccess(old, D, at(9 * 24 * HOUR), ISSUED), at(9 * 24 * HOUR));
    const back = await readLedger(path);
    assert.equal(back.attempts.length, 1);
    assert.deepEqual(back.issued, ISSUED);
    assert.equal(back.lastSuccessAt, at(9 * 24 * HOUR).toISOString());
    assert.match(readFileSync(path, 'utf8'), /"attempts"/);
    writeFileSync(path, '{not json');
    assert.deepEqual(await readLedger(path), emptyLedger());
  });
});

describe('failure classes', () => {
  it('classifies what a step of the order threw', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.equal(classifyError(refused, 'new order').reason, 'unreachable');
    const full = Object.assign(new Error('no space left'), { code: 'ENOSPC' });
    assert.equal(classifyError(full, 'challenge').reason, 'storage');
    // A path in CERT_DIR taken by a file (the account key's directory, say): the file system's.
    const taken = (() => {
      try {
        readFileSync(join(fileURLToPath(import.meta.url), 'x'));
      } catch (err) {
        return err;
      }
    })();
    assert.equal((taken as NodeJS.ErrnoException).code, 'ENOTDIR');
    assert.equal(classifyError(taken, 'account').reason, 'storage');
    // A bug of ours is not the CA being unreachable, whatever its message says.
    const bug = new TypeError("Cannot read properties of undefined (reading 'status')");
    assert.equal(classifyError(bug, 'finalize').reason, 'ca_error');
    const limited = classifyError(new Error('too many orders'), 'new order', { retryAfterMs: 5000 });
    assert.equal(limited.reason, 'rate_limited');
    assert.equal(limited.retryAfterMs, 5000);
    assert.equal(classifyError(new Error('Error creating new order'), 'new order').reason, 'ca_error');
    const notDir = Object.assign(new Error('ENOTDIR: not a directory'), { code: 'ENOTDIR' });
    assert.deepEqual(
      { ...storageError(notDir, 'writing the challenge token') },
      { name: 'OrderError', reason: 'storage', retryAfterMs: undefined },
    );
    assert.equal(
      storageError(notDir, 'writing the challenge token').message,
      'writing the challenge token: ENOTDIR: not a directory',
    );
    const own = new OrderError('dns', 'x');
    assert.equal(classifyError(own, 'y'), own);
    assert.match(own.hint, /DOMAIN must resolve/);
  });

  it('classifies a real acme-client request that got no response (a closed port) as unreachable', async () => {
    configureAcmeHttp(undefined, createLogger({ level: 'silent', promptBody: false }, 'certd'));
    const port = await freePort(); // listened on, then closed: nothing answers there now
    const client = new acme.Client({
      directoryUrl: `https://127.0.0.1:${port}/dir`,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
    });
    const err = await client.createAccount({ termsOfServiceAgreed: true }).then(
      () => assert.fail('no CA listens there'),
      (e: unknown) => e,
    );
    const classified = classifyError(err, 'account');
    assert.equal(classified.reason, 'unreachable');
    assert.match(
      classified.message,
      new RegExp(`^account: no response from the CA: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`),
    );
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    assert.equal(parseRetryAfter('120'), 120_000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2030 00:01:00 GMT', t0), 60_000);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });
});
