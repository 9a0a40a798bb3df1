/**
 * Looking at the deployed stack from the test: SQL in the Postgres container (`docker exec …
 * psql`), the stack's containers, a container's environment as its processes see it and as
 * `docker inspect` shows it, a crash of a container's main process (the restart policy must bring
 * it back), waiting until the service answers again, and which resources two captures declare
 * differently.
 */
import { isDeepStrictEqual } from 'node:util';
import type { TestBed } from '../docker/testbed.ts';
import { waitFor } from '../helpers/processes.ts';
import type { Capture } from './applier/types.ts';
import { callEdge, chatBody, type Edge } from './edge-client.ts';
import { PREFIX } from './stack.ts';

/** One value (or rows joined by newlines) from SQL run as the database's owner inside its container. */
export async function psql(bed: TestBed, sql: string): Promise<string> {
  return bed.cli.text([
    'exec',
    `${PREFIX}-postgres`,
    'psql',
    '-U',
    'gpt_proxy',
    '-d',
    'gpt_proxy',
    '-tAc',
    sql,
  ]);
}

/** The environment of the container's main process (`docker exec … env`). */
export async function containerEnv(bed: TestBed, name: string): Promise<Record<string, string>> {
  const lines = (await bed.cli.text(['exec', name, 'env'])).split('\n');
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The environment Docker keeps for the container (`docker inspect`'s Config.Env). */
export async function inspectEnv(bed: TestBed, name: string): Promise<Record<string, string>> {
  const list = JSON.parse(
    await bed.cli.text(['inspect', '--format', '{{json .Config.Env}}', name]),
  ) as string[];
  return Object.fromEntries(list.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The environment of the container's process 1 (what the service itself, or its init, was started with). */
export async function processEnv(bed: TestBed, name: string): Promise<string> {
  return bed.cli.text(['exec', name, 'sh', '-c', "tr '\\0' '\\n' < /proc/1/environ"]);
}

/** Names of the stack's containers (by its label), running or not. */
export async function stackContainers(bed: TestBed): Promise<string[]> {
  const filter = `label=gpt-proxy.stack=${PREFIX}`;
  const out = await bed.cli.text(['ps', '--all', '--filter', filter, '--format', '{{.Names}}']);
  return out.split('\n').filter(Boolean).sort();
}

/** Names of the running containers whose name starts with `prefix`. */
export async function containersNamed(bed: TestBed, prefix: string): Promise<string[]> {
  const out = await bed.cli.text(['ps', '--filter', `name=^${prefix}`, '--format', '{{.Names}}']);
  return out.split('\n').filter(Boolean).sort();
}

/**
 * Kills the container's main process from the host with SIGKILL, as a crash would, and waits
 * until Docker's restart policy has it running again.
 */
export async function crash(bed: TestBed, name: string): Promise<void> {
  const [pid, restarts] = (
    await bed.cli.text(['inspect', '--format', '{{.State.Pid}} {{.RestartCount}}', name])
  ).split(' ');
  process.kill(Number(pid), 'SIGKILL');
  await waitFor(
    async () => {
      const [running, count] = (
        await bed.cli.text(['inspect', '--format', '{{.State.Running}} {{.RestartCount}}', name])
      ).split(' ');
      return running === 'true' && Number(count) > Number(restarts);
    },
    { timeoutMs: 60_000, intervalMs: 250, what: `${name} restarted by its restart policy` },
  );
}

/** Waits until /health says healthy and a chat completion succeeds through the whole chain. */
export async function waitServing(
  edge: Edge,
  apiKey: string,
  what: string,
  timeoutMs = 120_000,
): Promise<void> {
  await waitFor(
    async () => {
      const health = await callEdge(edge, { path: '/health', timeoutMs: 10_000 });
      if (health.status !== 200) throw new Error(`/health ${health.status}: ${health.body.slice(0, 200)}`);
      const chat = await callEdge(edge, {
        path: '/v1/chat/completions',
        apiKey,
        body: chatBody(false),
        timeoutMs: 20_000,
      });
      if (chat.status !== 200) throw new Error(`completion ${chat.status}: ${chat.body.slice(0, 200)}`);
      return true;
    },
    { timeoutMs, intervalMs: 1_000, what },
  );
}

/** Logical names of the custom resources whose captured inputs differ between `a` and `b`. */
export function changedResources(a: Capture, b: Capture): string[] {
  const before = new Map(a.resources.map((r) => [r.urn, r]));
  return b.resources
    .filter((r) => r.custom && !isDeepStrictEqual(before.get(r.urn)?.inputs, r.inputs))
    .map((r) => r.name)
    .sort();
}
