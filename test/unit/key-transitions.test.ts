import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Outcome } from '../../app/src/upstream/classify.ts';
import type { KeyState } from '../../app/src/upstream/key-store.ts';
import { QUOTA_PROBE_INTERVAL_MS, transition } from '../../app/src/upstream/key-transitions.ts';

const policy = { failureThreshold: 3, failureBackoffMs: 10_000, firstProbeDelayMs: 60_000 };
const NOW = 1_000_000;
const key = { id: 1, provider: 'openai' as const, secret: 's', endpoint: null, deployments: null };
const state = (
  status: KeyState['status'],
  failureCount = 0,
  cooldownUntil: Date | null = null,
): KeyState => ({
  key,
  status,
  failureCount,
  cooldownUntil,
});
const failure: Outcome = { kind: 'upstream_failure', reason: '500 server_error', timeout: false };

describe('key state transitions', () => {
  const table: Array<[string, KeyState, Outcome, Partial<KeyState> | undefined]> = [
    ['a healthy key succeeding changes nothing', state('active'), { kind: 'success' }, undefined],
    ['a client mistake changes nothing', state('active', 2), { kind: 'client_error' }, undefined],
    [
      'a refusal of the model, not the key, changes nothing',
      state('active', 2),
      { kind: 'model_refused' },
      undefined,
    ],
    [
      'success heals a failing key',
      state('active', 2),
      { kind: 'success' },
      { status: 'active', failureCount: 0 },
    ],
    [
      'success heals a cooled key',
      state('cooling', 3, new Date(NOW - 1)),
      { kind: 'success' },
      { status: 'active', failureCount: 0, cooldownUntil: null },
    ],
    [
      '401 disables',
      state('active'),
      { kind: 'key_disabled', reason: '401 invalid_api_key' },
      { status: 'disabled' },
    ],
    [
      '429 cools for Retry-After',
      state('active', 1),
      { kind: 'key_cooling', retryAfterMs: 7_000, reason: '429' },
      { status: 'cooling', failureCount: 1, cooldownUntil: new Date(NOW + 7_000) },
    ],
    ['a first failure counts', state('active'), failure, { status: 'active', failureCount: 1 }],
    [
      'the third failure cools for the base backoff',
      state('active', 2),
      failure,
      { status: 'cooling', failureCount: 3, cooldownUntil: new Date(NOW + 10_000) },
    ],
    [
      'each further failure doubles it',
      state('cooling', 4, new Date(NOW - 1)),
      failure,
      { status: 'cooling', failureCount: 5, cooldownUntil: new Date(NOW + 40_000) },
    ],
    [
      'the backoff is capped at five minutes',
      state('cooling', 20, new Date(NOW - 1)),
      failure,
      { status: 'cooling', failureCount: 21, cooldownUntil: new Date(NOW + 300_000) },
    ],
  ];
  // A disabled key leaves that state only by a probe or an admin, never by a late answer.
  for (const outcome of [
    { kind: 'success' },
    { kind: 'key_disabled', reason: '401 invalid_api_key' },
    { kind: 'key_cooling', retryAfterMs: 7_000, reason: '429' },
    failure,
  ] satisfies Outcome[]) {
    table.push([
      `${outcome.kind} changes nothing on a disabled key`,
      state('disabled', 2),
      outcome,
      undefined,
    ]);
  }
  for (const [name, from, outcome, expected] of table) {
    it(name, () => {
      const t = transition(from, outcome, policy, NOW);
      if (expected === undefined) return assert.equal(t, undefined);
      assert.ok(t);
      for (const [field, value] of Object.entries(expected)) {
        assert.deepEqual(t.next[field as keyof typeof t.next], value, field);
      }
    });
  }

  it('a key the upstream refused is first probed one probe interval later', () => {
    const t = transition(
      state('active'),
      { kind: 'key_disabled', reason: '401 invalid_api_key' },
      policy,
      NOW,
    );
    assert.deepEqual(t?.params, ['401 invalid_api_key', 60_000]);
    assert.match(t?.sql ?? '', /next_probe_at = now\(\) \+ \$3/);
  });

  it('a key out of quota is first probed one quota interval later, as the prober probes it after', () => {
    // Listing models works without quota: probed after a minute it would heal at once and fail
    // every real request again.
    const t = transition(
      state('active'),
      { kind: 'key_disabled', reason: 'insufficient_quota' },
      policy,
      NOW,
    );
    assert.deepEqual(t?.params, ['insufficient_quota', QUOTA_PROBE_INTERVAL_MS]);
    assert.equal(QUOTA_PROBE_INTERVAL_MS, 30 * 60_000);
  });

  it('every statement leaves a disabled or retired row alone', () => {
    const outcomes: Outcome[] = [
      { kind: 'success' },
      { kind: 'key_disabled', reason: '401 invalid_api_key' },
      { kind: 'key_cooling', retryAfterMs: 7_000, reason: '429' },
      failure,
    ];
    for (const outcome of outcomes) {
      for (const from of [state('active', 1), state('active', 2)]) {
        const sql = transition(from, outcome, policy, NOW)?.sql ?? '';
        assert.match(sql, /WHERE id = \$1 AND status IN \('active', 'cooling'\)/, outcome.kind);
      }
    }
  });
});
