/**
 * What the deployment meets outside itself, as containers on the stack's own `edge` network of
 * the test engine: pebble as the ACME CA (alias `pebble`), pebble-challtestsrv as the DNS pebble
 * asks for the domain (pointed at the nginx container once it exists), and the fake OpenAI
 * upstream (alias `fake-upstream`, streaming its answers slowly, delta by delta). Only pebble's
 * and challtestsrv's management APIs are published, on 127.0.0.1.
 */
import type { Container } from '../docker/containers.ts';
import { waitForLog } from '../docker/probes.ts';
import type { ImageTags } from '../docker/recipes.ts';
import type { TestBed } from '../docker/testbed.ts';
import { httpsGet } from '../helpers/https-get.ts';
import { waitFor } from '../helpers/processes.ts';

/** Delay between the fake upstream's stream events, so "event by event" is measurable. */
export const DELTA_DELAY_MS = 150;
const PEBBLE_TLS_CA = '/test/certs/pebble.minica.pem';

export interface Surroundings {
  /** The root pebble issues certificates under (its management API, /roots/0). */
  rootPem(): Promise<string>;
  /** Makes the DNS pebble uses answer `domain` with `address`. */
  pointAt(domain: string, address: string): Promise<void>;
  /** Removes the three containers. */
  remove(): Promise<void>;
}

/** The CA that signed pebble's own TLS certificate (what certd must trust: `acmeCaBundle`). */
export function pebbleTlsCa(bed: TestBed, tags: ImageTags): Promise<string> {
  return bed.cli.text(['run', '--rm', '--network', 'none', tags.pebble, 'cat', PEBBLE_TLS_CA]);
}

/** The container's address on `network`. */
export function addressOn(bed: TestBed, container: string, network: string): Promise<string> {
  return bed.cli.text([
    'inspect',
    '--format',
    `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
    container,
  ]);
}

/** Starts the three on `network` (which the applier has just created). */
export async function startSurroundings(
  bed: TestBed,
  tags: ImageTags,
  network: string,
): Promise<Surroundings> {
  const started: Container[] = [];
  const run = async (spec: Parameters<TestBed['run']>[0]) => {
    const container = await bed.run(spec);
    started.push(container);
    return container;
  };
  const remove = async () => {
    for (const c of started.splice(0)) await c.remove();
  };
  try {
    const dns = await run({
      name: 'e2e-challtestsrv',
      image: tags.pebble,
      network,
      publish: [8055],
      command: [
        'pebble-challtestsrv',
        '-management',
        ':8055',
        '-dns01',
        ':8053',
        '-defaultIPv4',
        '',
        '-defaultIPv6',
        '',
      ].concat(['-http01', '', '-https01', '', '-tlsalpn01', '']),
    });
    const dnsAddress = await addressOn(bed, dns.name, network);
    const pebble = await run({
      name: 'e2e-pebble',
      image: tags.pebble,
      network,
      aliases: ['pebble'],
      env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
      publish: [15000],
      command: ['pebble', '-config', '/test/config/pebble-config.json', '-dnsserver', `${dnsAddress}:8053`],
    });
    await run({
      name: 'e2e-fake-upstream',
      image: tags.fakeUpstream,
      network,
      aliases: ['fake-upstream'],
      command: [
        'node',
        'main.ts',
        '--port',
        '8080',
        '--host',
        '0.0.0.0',
        '--delta-delay-ms',
        String(DELTA_DELAY_MS),
      ],
    });
    await waitForLog(pebble, /Listening on: 0\.0\.0\.0:14000/);
    const tlsCa = (await pebble.exec(['cat', PEBBLE_TLS_CA])).stdout;
    const managementPort = await pebble.hostPort(15000);
    const dnsManagement = `http://127.0.0.1:${await dns.hostPort(8055)}`;
    return {
      rootPem: async () => {
        const res = await waitFor(() => httpsGet(managementPort, '/roots/0', tlsCa, 'localhost'), {
          timeoutMs: 15_000,
          what: 'pebble /roots/0',
        });
        if (res.status !== 200) throw new Error(`pebble /roots/0 answered ${res.status}`);
        return res.body;
      },
      pointAt: async (domain, address) => {
        const post = () =>
          fetch(`${dnsManagement}/add-a`, {
            method: 'POST',
            body: JSON.stringify({ host: domain, addresses: [address] }),
            signal: AbortSignal.timeout(5_000),
          }).then((r) => r.status === 200);
        await waitFor(post, { timeoutMs: 15_000, intervalMs: 250, what: 'challtestsrv /add-a' });
      },
      remove,
    };
  } catch (err) {
    await remove();
    throw err;
  }
}
