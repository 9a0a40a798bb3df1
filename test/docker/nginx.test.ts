// The nginx stand-in against the official image's documented interface: templates in
// /etc/nginx/templates rendered into /etc/nginx/conf.d with the environment (only defined
// variables, nginx's own left alone, subdirectories kept), /docker-entrypoint.d/ scripts in order
// (*.envsh sourced, non-executable ones skipped, a failing one stops the container), master as
// root and workers as the unprivileged nginx user, stopped gracefully by SIGQUIT.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/processes.ts';
import { processes, waitForExit, waitForHttp, waitForLog } from './probes.ts';
import type { ImageTags } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();
const NGINX_UID = 101;

// Undefined variables stay as they are (tested in a comment: nginx would read ${X} as its own).
const GREETING_TEMPLATE = `# \${UNSET_VARIABLE}
server {
    listen 8080;
    location / {
        default_type text/plain;
        return 200 "\${GREETING} from $host\\n";
    }
}
`;

describe('nginx stand-in', { skip: bed.skip }, () => {
  let tags: ImageTags;

  before(async () => {
    tags = await bed.images(['nginx']);
    await bed.network('nginx-net');
  });
  after(() => bed.stop());

  test('renders a template from its environment and serves it; master root, workers nginx', async () => {
    const nginx = await bed.run({
      name: 'nginx-templates',
      image: tags.nginx,
      network: 'nginx-net',
      env: { GREETING: 'hello' },
      publish: [8080, 80],
      files: [
        { path: '/etc/nginx/templates/greeting.conf.template', content: GREETING_TEMPLATE },
        { path: '/etc/nginx/templates/sub/extra.conf.template', content: `# \${GREETING}\n` },
      ],
    });
    const port = await nginx.hostPort(8080);
    const body = await waitForHttp(`http://127.0.0.1:${port}/`, { container: nginx });
    assert.equal(body, 'hello from 127.0.0.1\n');
    const rendered = await nginx.exec([
      'cat',
      '/etc/nginx/conf.d/greeting.conf',
      '/etc/nginx/conf.d/sub/extra.conf',
    ]);
    assert.match(rendered.stdout, /return 200 "hello from \$host/);
    assert.match(rendered.stdout, /^# \$\{UNSET_VARIABLE\}$/m);
    assert.match(rendered.stdout, /^# hello$/m);
    // The image's default server is still there next to the rendered one.
    assert.match(await waitForHttp(`http://127.0.0.1:${await nginx.hostPort(80)}/`), /Welcome to nginx!/);

    const all = await processes(nginx);
    const master = all.find((p) => /nginx: master process/.test(p.cmdline));
    const workers = all.filter((p) => /nginx: worker process/.test(p.cmdline));
    assert.equal(master?.pid, 1, 'nginx runs as PID 1 (the entrypoint execs it)');
    assert.equal(master?.uid, 0);
    assert.ok(workers.length > 0, JSON.stringify(all));
    for (const worker of workers) assert.equal(worker.uid, NGINX_UID);
    assert.match(await nginx.logs(), /Running envsubst on \/etc\/nginx\/templates\/greeting\.conf\.template/);

    assert.equal(await nginx.inspect('{{.Config.StopSignal}}'), 'SIGQUIT');
    await bed.cli.run(['stop', nginx.name], { timeoutMs: 60_000 });
    assert.equal(await waitForExit(nginx), 0, 'SIGQUIT is a graceful stop');
  });

  test('runs /docker-entrypoint.d in order, sourcing *.envsh, skipping what is not executable', async () => {
    const nginx = await bed.run({
      name: 'nginx-scripts',
      image: tags.nginx,
      network: 'nginx-net',
      files: [
        { path: '/docker-entrypoint.d/05-export.envsh', content: 'export FROM_ENVSH=sourced\n', mode: 0o755 },
        {
          path: '/docker-entrypoint.d/50-record.sh',
          content: '#!/bin/sh\necho "50 saw FROM_ENVSH=$FROM_ENVSH"\n',
          mode: 0o755,
        },
        {
          path: '/docker-entrypoint.d/60-not-executable.sh',
          content: '#!/bin/sh\necho never\n',
          mode: 0o644,
        },
      ],
    });
    const log = await waitForLog(nginx, /Configuration complete; ready for start up/);
    assert.match(log, /50 saw FROM_ENVSH=sourced/);
    assert.match(log, /Ignoring \/docker-entrypoint\.d\/60-not-executable\.sh, not executable/);
    assert.doesNotMatch(log, /never/);
    const order = [
      '05-export.envsh',
      '15-local-resolvers.envsh',
      '20-envsubst-on-templates.sh',
      '50-record.sh',
    ];
    const positions = order.map((name) => log.indexOf(`/docker-entrypoint.d/${name}`));
    assert.deepEqual(
      [...positions].sort((a, b) => a - b),
      positions,
      log,
    );
    assert.ok(
      positions.every((p) => p >= 0),
      log,
    );
  });

  test('workers stay unprivileged under an nginx.conf without a `user` directive (like the repo one)', async () => {
    // The official build's default worker user is nginx; Debian's binary's is nobody. Either way
    // not root, which is what the program's configuration relies on.
    const nginx = await bed.run({
      name: 'nginx-no-user',
      image: tags.nginx,
      files: [{ path: '/etc/nginx/nginx.conf', content: 'events {}\nhttp { include conf.d/*.conf; }\n' }],
    });
    const workers = await waitFor(
      async () => {
        const found = (await processes(nginx)).filter((p) => /nginx: worker process/.test(p.cmdline));
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'nginx workers' },
    );
    for (const worker of workers) assert.notEqual(worker.uid, 0);
  });

  test('a failing /docker-entrypoint.d script stops the container before nginx starts', async () => {
    const nginx = await bed.run({
      name: 'nginx-failing',
      image: tags.nginx,
      files: [
        {
          path: '/docker-entrypoint.d/25-fail.sh',
          content: '#!/bin/sh\necho "bad setting" >&2\nexit 3\n',
          mode: 0o755,
        },
      ],
    });
    assert.notEqual(await waitForExit(nginx), 0);
    const log = await nginx.logs();
    assert.match(log, /bad setting/);
    assert.doesNotMatch(log, /Configuration complete/);
  });
});
