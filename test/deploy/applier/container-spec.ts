/**
 * A docker.Container's inputs translated into what the docker provider sends the engine: the
 * create request (Config + HostConfig), the networks to connect, the files to upload, and how to
 * wait, stop and remove. Pure, so the same code checks a captured resource before anything is
 * touched and builds the request once its references are resolved. Every input is translated or
 * refused; publishing a port anywhere but 127.0.0.1 is refused too (host-side test traffic stays
 * on the loopback).
 */
import { type InputReader, refuse } from './inputs.ts';
import type { TarFile } from './tar.ts';

export interface ContainerPlan {
  /** Undefined: generated as Pulumi autonames (logical name + '-' + 7 hex digits). */
  name: string | undefined;
  create: Record<string, unknown>;
  /** The first is joined at create time, the rest connected before the start. */
  networks: Array<{ name: string; aliases: string[] }>;
  uploads: TarFile[];
  /** Wait for the health check to pass, at most this long; undefined: only for running. */
  waitHealthyMs: number | undefined;
  mustRun: boolean;
  /** Has a restart policy: an exit may be followed by a restart. */
  restarts: boolean;
  /** `docker stop` grace before removal; 0 removes at once (force). */
  destroyGraceSeconds: number;
  removeVolumes: boolean;
}

const KNOWN = [
  ...['name', 'image', 'command', 'entrypoints', 'envs', 'user', 'workingDir', 'hostname', 'labels'],
  ...['restart', 'maxRetryCount', 'init', 'capabilities', 'securityOpts', 'readOnly', 'tmpfs'],
  ...['stopTimeout', 'stopSignal', 'destroyGraceSeconds', 'removeVolumes', 'shmSize', 'logDriver', 'logOpts'],
  ...['healthcheck', 'wait', 'waitTimeout', 'mustRun', 'start', 'ports', 'volumes', 'networksAdvanced'],
  'uploads',
] as const;

/** Go's time.Duration text ("10s", "1m30s", "500ms") in nanoseconds, as the provider parses it. */
export function durationNs(r: InputReader, key: string): number | undefined {
  const text = r.string(key);
  if (text === undefined) return undefined;
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    refuse(r.resource, r.at(key), 'is not a duration like 10s');
  }
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] ?? ''] ?? 0), 0));
}

function healthcheck(h: InputReader): Record<string, unknown> {
  h.only(['tests', 'interval', 'timeout', 'retries', 'startPeriod', 'startInterval']);
  return {
    Test: h.strings('tests') ?? refuse(h.resource, h.at('tests'), 'is required'),
    Interval: durationNs(h, 'interval'),
    Timeout: durationNs(h, 'timeout'),
    Retries: h.number('retries'),
    StartPeriod: durationNs(h, 'startPeriod'),
    StartInterval: durationNs(h, 'startInterval'),
  };
}

function ports(r: InputReader, publishOn: string) {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of r.objects('ports')) {
    p.only(['internal', 'external', 'ip', 'protocol']);
    const internal = p.number('internal') ?? refuse(p.resource, p.at('internal'), 'is required');
    const ip = p.string('ip') ?? '0.0.0.0';
    if (ip !== publishOn)
      refuse(p.resource, p.at('ip'), `publishes on ${ip}; the applier publishes only on ${publishOn}`);
    const key = `${internal}/${p.string('protocol') ?? 'tcp'}`;
    exposed[key] = {};
    bindings[key] = [...(bindings[key] ?? []), { HostIp: ip, HostPort: String(p.number('external') ?? '') }];
  }
  return { exposed, bindings };
}

function binds(r: InputReader): string[] {
  return r.objects('volumes').map((v) => {
    v.only(['volumeName', 'hostPath', 'containerPath', 'readOnly']);
    const source = v.string('volumeName') ?? v.string('hostPath');
    if (source === undefined) refuse(v.resource, v.at('volumeName'), 'or hostPath is required');
    return `${source}:${v.requireString('containerPath')}${v.boolean('readOnly') ? ':ro' : ''}`;
  });
}

function uploads(r: InputReader): TarFile[] {
  return r.objects('uploads').map((u) => {
    u.only(['file', 'content', 'contentBase64', 'executable', 'permissions']);
    const content = u.has('contentBase64')
      ? Buffer.from(u.requireString('contentBase64'), 'base64')
      : Buffer.from(u.requireString('content'), 'utf8');
    const permissions = u.string('permissions');
    const mode =
      permissions !== undefined ? Number.parseInt(permissions, 8) : u.boolean('executable') ? 0o744 : 0o644;
    const path = u.requireString('file');
    if (!path.startsWith('/') || Number.isNaN(mode))
      refuse(u.resource, u.at('file'), 'is not an absolute path with a mode');
    return { path, content, mode };
  });
}

function labelMap(r: InputReader): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of r.objects('labels'))
    out[l.only(['label', 'value']).requireString('label')] = l.requireString('value');
  return out;
}

/** The plan for one container; refuses what it cannot translate. */
export function planContainer(r: InputReader, publishOn: string): ContainerPlan {
  r.only(KNOWN);
  if (r.boolean('start') === false) refuse(r.resource, 'start', 'false is not translated');
  const networks = r.objects('networksAdvanced').map((n) => {
    n.only(['name', 'aliases']);
    return { name: n.requireString('name'), aliases: n.strings('aliases') ?? [] };
  });
  const caps = r.object('capabilities')?.only(['adds', 'drops']);
  const { exposed, bindings } = ports(r, publishOn);
  const health = r.object('healthcheck');
  const shmSize = r.number('shmSize');
  const first = networks[0];
  const restart = r.string('restart') ?? 'no';
  const create = {
    Image: r.requireString('image'),
    Cmd: r.strings('command'),
    Entrypoint: r.strings('entrypoints'),
    Env: r.strings('envs'),
    User: r.string('user'),
    WorkingDir: r.string('workingDir'),
    Hostname: r.string('hostname'),
    Labels: labelMap(r),
    StopTimeout: r.number('stopTimeout'),
    StopSignal: r.string('stopSignal'),
    ExposedPorts: exposed,
    Healthcheck: health ? healthcheck(health) : undefined,
    HostConfig: {
      Binds: binds(r),
      PortBindings: bindings,
      RestartPolicy: { Name: restart, MaximumRetryCount: r.number('maxRetryCount') ?? 0 },
      Init: r.boolean('init') ?? false,
      CapAdd: caps?.strings('adds'),
      CapDrop: caps?.strings('drops'),
      SecurityOpt: r.strings('securityOpts'),
      ReadonlyRootfs: r.boolean('readOnly') ?? false,
      Tmpfs: r.record('tmpfs'),
      ShmSize: shmSize === undefined ? undefined : shmSize * 1024 * 1024,
      LogConfig: { Type: r.string('logDriver') ?? '', Config: r.record('logOpts') ?? {} },
      NetworkMode: first?.name,
    },
    NetworkingConfig: first ? { EndpointsConfig: { [first.name]: { Aliases: first.aliases } } } : undefined,
  };
  return {
    name: r.string('name'),
    create,
    networks,
    uploads: uploads(r),
    waitHealthyMs: r.boolean('wait') ? (r.number('waitTimeout') ?? 60) * 1000 : undefined,
    mustRun: r.boolean('mustRun') ?? true,
    restarts: restart !== 'no',
    destroyGraceSeconds: r.number('destroyGraceSeconds') ?? 0,
    removeVolumes: r.boolean('removeVolumes') ?? true,
  };
}
