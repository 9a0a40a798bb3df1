// The benchmark's upstream: the test fake (test/fake-upstream) in its own process, without a request
// log, plus a line protocol on stdin so the runner can hold streams open:
//   hold      -> "ok"        every stream started from now on stops after its first event
//   held N    -> "ok"        once N streams are held (answers "timeout" after 60 s)
//   release   -> "ok"        the held streams finish
// `node bench/fake.ts --port N`; prints `listening URL`; exits on SIGTERM/SIGINT or when stdin closes.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { StreamLatch } from '../test/fake-upstream/control.ts';
import { startFakeUpstream } from '../test/fake-upstream/server.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const fake = await startFakeUpstream({ port: Number(values.port), host: '127.0.0.1', recordRequests: false });
process.stdout.write(`listening ${fake.url}\n`);

let latch: StreamLatch | undefined;
const timeout = (ms: number) => new Promise<string>((r) => setTimeout(r, ms, 'timeout').unref());

async function command(line: string): Promise<string> {
  const [verb, arg] = line.trim().split(/\s+/);
  if (verb === 'hold') latch = fake.holdStreams();
  else if (verb === 'release') latch?.release();
  else if (verb === 'held' && latch !== undefined) {
    return Promise.race([latch.waitForHeld(Number(arg)).then(() => 'ok'), timeout(60_000)]);
  } else return `unknown command: ${line}`;
  return 'ok';
}

const shutdown = (): void => {
  fake.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
createInterface({ input: process.stdin })
  .on('line', (line) => {
    void command(line).then((answer) => process.stdout.write(`${answer}\n`));
  })
  .on('close', shutdown);
process.once('SIGTERM', shutdown).once('SIGINT', shutdown);
