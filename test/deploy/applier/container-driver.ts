/**
 * docker.Container, as the docker provider does it: create (joined to its first network),
 * connect the other networks with their aliases, upload the files, start, make sure it runs and,
 * with `wait`, that its health check passes within `waitTimeout`. A container that does not come
 * up is removed again, its log tail in the error. Delete: stop with `destroyGraceSeconds`, then
 * remove (with its anonymous volumes).
 */
import { randomBytes } from 'node:crypto';
import { StopWaiting, waitFor } from '../../helpers/processes.ts';
import { type ContainerPlan, planContainer } from './container-spec.ts';
import type { Driver, DriverContext } from './driver.ts';
import { type Engine, q } from './engine.ts';
import { InputReader } from './inputs.ts';
import { tarFiles } from './tar.ts';
import type { Outputs } from './types.ts';

interface Inspect {
  Id: string;
  State: { Status: string; Running: boolean; ExitCode: number; Health?: { Status: string } };
}

async function inspect(engine: Engine, id: string): Promise<Inspect> {
  const found = await engine.json<Inspect>('GET', `/containers/${q(id)}/json`);
  if (!found) throw new Error(`docker API: no answer inspecting ${id}`);
  return found;
}

async function remove(engine: Engine, id: string, graceSeconds: number, volumes: boolean): Promise<void> {
  if (graceSeconds > 0) {
    await engine.call('POST', `/containers/${q(id)}/stop?t=${graceSeconds}`, {
      timeoutMs: (graceSeconds + 30) * 1000,
      accept: [304, 404],
    });
  }
  await engine.call('DELETE', `/containers/${q(id)}?force=true&v=${volumes}`, { accept: [404] });
}

/** Waits for running (and healthy, when asked); throws with the reason and the log tail. */
async function waitUp(ctx: DriverContext, id: string, plan: ContainerPlan): Promise<void> {
  const healthyMs = plan.waitHealthyMs;
  const timeoutMs = Math.min(healthyMs ?? 15_000, ctx.maxWaitMs);
  let last = '';
  try {
    await waitFor(
      async () => {
        const { State } = await inspect(ctx.engine, id);
        last = `${State.Status}${State.Health ? `, health ${State.Health.Status}` : ''}`;
        if (!State.Running && State.Status !== 'restarting') {
          // With a restart policy an exit may be followed by a restart; without one it is final.
          const exited = `exited with ${State.ExitCode}`;
          throw plan.restarts ? new Error(exited) : new StopWaiting(exited);
        }
        return healthyMs === undefined ? State.Running : State.Health?.Status === 'healthy';
      },
      { timeoutMs, intervalMs: 250, what: healthyMs === undefined ? 'running' : 'healthy' },
    );
  } catch (err) {
    const log = await ctx.engine.logTail(id).catch(() => '(no log)');
    throw new Error(`${(err as Error).message} (last state: ${last})\n--- its log (end) ---\n${log}`);
  }
}

export const containerDriver: Driver = {
  docker: true,
  check(inputs) {
    planContainer(inputs, '127.0.0.1');
  },
  async create(ctx, inputs, logicalName): Promise<Outputs> {
    const plan = planContainer(inputs, ctx.publishOn);
    // Pulumi's autonaming: the logical name and seven random hex digits.
    const name = plan.name ?? `${logicalName}-${randomBytes(4).toString('hex').slice(0, 7)}`;
    const created = await ctx.engine.json<{ Id: string }>('POST', `/containers/create?name=${q(name)}`, {
      body: plan.create,
    });
    if (!created) throw new Error(`docker API: creating ${name} returned nothing`);
    const id = created.Id;
    try {
      for (const network of plan.networks.slice(1)) {
        await ctx.engine.call('POST', `/networks/${q(network.name)}/connect`, {
          body: { Container: id, EndpointConfig: { Aliases: network.aliases } },
        });
      }
      if (plan.uploads.length > 0) {
        await ctx.engine.call('PUT', `/containers/${q(id)}/archive?path=%2F`, {
          raw: tarFiles(plan.uploads),
          contentType: 'application/x-tar',
        });
      }
      await ctx.engine.call('POST', `/containers/${q(id)}/start`, { accept: [304] });
      if (plan.mustRun || plan.waitHealthyMs !== undefined) await waitUp(ctx, id, plan);
    } catch (err) {
      await remove(ctx.engine, id, 0, true).catch(() => {});
      throw new Error(`container ${name} did not come up: ${(err as Error).message}`);
    }
    return { id, name };
  },
  async delete(ctx, applied) {
    const plan = planContainer(new InputReader(applied, applied.inputs), ctx.publishOn);
    const id = applied.outputs.id ?? '';
    await remove(ctx.engine, id, plan.destroyGraceSeconds, plan.removeVolumes);
  },
};
