// Two admins taking each other's rights at the same moment must not leave the appliance without
// an enabled admin. Real Postgres: a table lock holds both requests until both have reached it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/processes.ts';
import { type AdminFixture, startAdminFixture } from './admin-fixture.ts';

describe('admin API: the last enabled admin', () => {
  let f: AdminFixture;
  before(async () => {
    f = await startAdminFixture();
  });
  after(async () => {
    await f?.close();
  });

  const enabledAdmins = async () =>
    (await f.stack.db.query('SELECT id FROM users WHERE is_admin AND NOT disabled')).rowCount;

  it('of two admins demoting and disabling each other at once, the second is refused', async () => {
    const other = await f.stack.issueKey({ admin: true, username: 'second-admin' });
    assert.equal(await enabledAdmins(), 2);
    // Both keys are looked up now, so neither request needs Postgres before its change.
    for (const key of [f.admin.key, other.key])
      assert.equal((await f.call('GET', '/users', { key })).status, 200);

    const locker = await f.stack.db.connect();
    let answers: Array<{ status: number; text: string }>;
    try {
      await locker.query('BEGIN');
      // Reads go on; row locks and writes on users wait.
      await locker.query('LOCK TABLE users IN EXCLUSIVE MODE');
      const both = Promise.all([
        f.call('PATCH', `/users/${other.userId}`, { body: { is_admin: false } }),
        f.call('PATCH', `/users/${f.admin.userId}`, { key: other.key, body: { disabled: true } }),
      ]);
      await waitFor(
        async () =>
          (
            await f.stack.db.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            )
          ).rows[0]?.n === 2,
        { intervalMs: 20, what: 'both changes to wait for the lock' },
      );
      await locker.query('COMMIT');
      answers = await both;
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    }
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 400], answers.map((a) => a.text).join('\n'));
    const refused = answers.find((a) => a.status === 400);
    assert.match(refused?.text ?? '', /no enabled admin/);
    assert.equal(await enabledAdmins(), 1);
  });
});
