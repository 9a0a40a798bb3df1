/**
 * The docker provider itself and its networks and volumes, and @pulumi/random's resources. The
 * provider must point at the engine the applier was given (the test engine): anything else is
 * refused. Networks and volumes are created from their inputs as the provider creates them.
 */
import type { Driver } from './driver.ts';
import { q } from './engine.ts';
import { type InputReader, refuse } from './inputs.ts';

export const providerDriver: Driver = {
  docker: false,
  check(inputs) {
    inputs.only(['host', 'version']);
    if (!inputs.requireString('host').startsWith('unix://')) {
      refuse(inputs.resource, 'host', 'is not a unix:// socket: the applier drives a local test engine only');
    }
  },
  async create(ctx, inputs) {
    const host = inputs.requireString('host');
    if (host !== ctx.engine.host)
      refuse(inputs.resource, 'host', `is not the engine the applier was given (${ctx.engine.host})`);
    await ctx.engine.call('GET', '/_ping', { timeoutMs: 10_000 });
    return { id: host };
  },
  async delete() {},
};

function labels(inputs: InputReader): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of inputs.objects('labels'))
    out[l.only(['label', 'value']).requireString('label')] = l.requireString('value');
  return out;
}

export const networkDriver: Driver = {
  docker: true,
  check(inputs) {
    inputs.only(['name', 'driver', 'internal', 'attachable', 'labels']);
    labels(inputs);
  },
  async create(ctx, inputs) {
    const Name = inputs.requireString('name');
    const body = {
      Name,
      Driver: inputs.string('driver') ?? 'bridge',
      Internal: inputs.boolean('internal') ?? false,
      Attachable: inputs.boolean('attachable') ?? false,
      Labels: labels(inputs),
      CheckDuplicate: true,
    };
    const created = await ctx.engine.json<{ Id: string }>('POST', '/networks/create', { body });
    return { id: created?.Id ?? Name, name: Name };
  },
  async delete(ctx, applied) {
    await ctx.engine.call('DELETE', `/networks/${q(applied.outputs.id ?? '')}`, { accept: [404] });
  },
};

export const volumeDriver: Driver = {
  docker: true,
  check(inputs) {
    inputs.only(['name', 'driver', 'driverOpts', 'labels']);
    labels(inputs);
    inputs.record('driverOpts');
  },
  async create(ctx, inputs) {
    const Name = inputs.requireString('name');
    const body = {
      Name,
      Driver: inputs.string('driver') ?? 'local',
      DriverOpts: inputs.record('driverOpts') ?? {},
      Labels: labels(inputs),
    };
    await ctx.engine.call('POST', '/volumes/create', { body });
    return { id: Name, name: Name };
  },
  async delete(ctx, applied) {
    await ctx.engine.call('DELETE', `/volumes/${q(applied.outputs.name ?? '')}`, { accept: [404] });
  },
};

/** @pulumi/random: its values were made in the capture step; nothing exists outside the program. */
export const randomDriver: Driver = {
  docker: false,
  check() {},
  async create(_ctx, _inputs, logicalName) {
    return { id: logicalName };
  },
  async delete() {},
};
