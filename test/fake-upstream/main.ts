// Standalone fake upstream: `node test/fake-upstream/main.ts --port 0 [--host 127.0.0.1] [--record]
// [--answer TEXT] [--delta-delay-ms N] [--path-prefix /p]`. Prints `listening http://HOST:PORT`, exits on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { startFakeUpstream } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    record: { type: 'boolean', default: false },
    answer: { type: 'string' },
    'delta-delay-ms': { type: 'string', default: '0' },
    'path-prefix': { type: 'string', default: '' },
  },
});

const fake = await startFakeUpstream({
  port: Number(values.port),
  host: values.host,
  recordRequests: values.record,
  answer: values.answer,
  deltaDelayMs: Number(values['delta-delay-ms']),
  pathPrefix: values['path-prefix'],
});
process.stdout.write(`listening ${fake.url}\n`);

const shutdown = (): void => {
  fake.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
