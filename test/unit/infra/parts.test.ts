import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { APP_COMMAND } from '../../../infra/app.ts';
import { dockerRun, shellQuote } from '../../../infra/docker-run.ts';
import { adminKeyFrom } from '../../../infra/hooks.ts';
import { nginxUploads, statusCheck } from '../../../infra/nginx.ts';
import { APP_NODE_FLAGS } from '../../../infra/node-flags.ts';
import { freePort } from '../../helpers/processes.ts';
import { readRepoFile } from './registrations.ts';

// The program's small parts that need no Pulumi run, and the files it ships to the Docker host.

describe('hook commands', () => {
  it('are fixed strings: every value, secret or not, travels in the environment', () => {
    const run = dockerRun({
      dockerHost: 'ssh://deploy@host',
      image: 'img',
      network: 'net',
      volumes: [{ volume: 'vol', path: '/certs', readOnly: true }],
      envNames: ['POSTGRES_PASSWORD'],
      argv: ['node', 'x.js', '--email', "o'brien@example.com"],
    });
    assert.equal(
      run.command,
      `exec docker run --rm --network "$GPT_PROXY_NETWORK" --volume "$GPT_PROXY_VOLUME_0:/certs:ro" --env POSTGRES_PASSWORD "$GPT_PROXY_IMAGE" node x.js --email 'o'\\''brien@example.com'`,
    );
    assert.equal(shellQuote('a b'), "'a b'");
    assert.throws(() =>
      dockerRun({ dockerHost: 'x', image: 'i', network: 'n', envNames: ['A;rm'], argv: [] }),
    );
  });

  it("create-admin's key is read from its --json line; none when the user existed", () => {
    assert.equal(adminKeyFrom('{"username":"admin","email":"e","created":true,"apiKey":"gpk_1"}\n'), 'gpk_1');
    assert.equal(adminKeyFrom('{"username":"admin","email":"e","created":false}\n'), '');
    assert.equal(adminKeyFrom(''), '');
  });
});

describe('files the program ships', () => {
  it('nginx/ is uploaded where the official image looks for it; entrypoint scripts executable', () => {
    const uploads = nginxUploads();
    const byFile = new Map(uploads.map((u) => [u.file, u]));
    assert.ok(byFile.has('/etc/nginx/nginx.conf'));
    assert.ok(uploads.some((u) => String(u.file).startsWith('/etc/nginx/templates/')));
    const scripts = uploads.filter((u) => String(u.file).startsWith('/docker-entrypoint.d/'));
    assert.ok(scripts.some((u) => u.file === '/docker-entrypoint.d/20-envsubst-on-templates.sh'));
    for (const s of scripts) assert.equal(s.executable, true, String(s.file));
    assert.ok(uploads.every((u) => !String(u.file).endsWith('.md')));
  });

  it('Dockerfile: multi-stage, Node base as a build argument, production dependencies, non-root, health check', () => {
    const dockerfile = readRepoFile('Dockerfile');
    assert.match(dockerfile, /^ARG NODE_BASE=node:24-bookworm-slim$/m);
    assert.match(dockerfile, /^FROM \$\{NODE_BASE\} AS build$/m);
    assert.match(dockerfile, /^FROM \$\{NODE_BASE\} AS runtime$/m);
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    assert.match(runtime, /npm ci --omit=dev/);
    assert.match(runtime, /^COPY --from=build \/src\/dist \.\/dist$/m);
    assert.match(runtime, /^USER node$/m);
    assert.match(runtime, /^HEALTHCHECK .*\n.*\/health\/live/m);
    // The image, Pulumi's command and `npm start` run the proxy with the same V8 flags (infra/node-flags.ts).
    assert.ok(
      runtime.includes(`\nCMD ${JSON.stringify(APP_COMMAND).replaceAll(',', ', ')}\n`),
      'CMD is APP_COMMAND',
    );
    const scripts = (JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.equal(scripts.start, APP_COMMAND.join(' '));
    assert.deepEqual(APP_COMMAND, ['node', ...APP_NODE_FLAGS, 'dist/app/src/main.js']);
    const ignore = readRepoFile('.dockerignore').split('\n');
    assert.equal(
      ignore.find((l) => !l.startsWith('#') && l !== ''),
      '*',
      'everything out first',
    );
    for (const keep of ['!package.json', '!package-lock.json', '!app', '!scripts', '!tsconfig.build.json']) {
      assert.ok(ignore.includes(keep), keep);
    }
  });
});

/** Runs the health check as Docker's CMD-SHELL would (the test server lives in this process). */
function check(port: number): Promise<number> {
  return new Promise((done) => {
    execFile('sh', ['-c', statusCheck(port)], { timeout: 10_000 }, (err) => {
      done(err === null ? 0 : typeof err.code === 'number' ? err.code : 1);
    });
  });
}

describe("nginx's health check", () => {
  it('passes only when stub_status answers', async () => {
    const port = await freePort();
    let answer = 'Active connections: 1\n';
    // bash's printf may send the request in more than one write (its stdout is line-buffered),
    // so the request is read up to its blank line, as nginx would.
    const server = createServer((socket) => {
      let request = '';
      socket.on('data', (chunk) => {
        request += String(chunk);
        if (!request.includes('\r\n\r\n')) return;
        const ok = request === 'GET /stub_status HTTP/1.0\r\n\r\n';
        socket.end(`HTTP/1.1 ${ok ? 200 : 400} X\r\n\r\n${ok ? answer : ''}`);
      });
    });
    await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
    try {
      assert.equal(await check(port), 0);
      answer = 'not found\n';
      assert.notEqual(await check(port), 0);
    } finally {
      server.close();
    }
    assert.notEqual(await check(port), 0, 'nothing listening');
  });
});
