// What Koa itself costs: a Koa app with one route that forwards a chat completion the way the
// proxy does (body read by events, undici dispatch with the answer buffered, headers copied), and
// nothing else: no auth, limits, usage, metrics or log. Started in place of a second proxy:
//   node bench/quick.ts --mode json --b-main bench/koa-floor.ts
// It reads PORT, HOST and OPENAI_BASE_URL as the proxy does. (JSON only: it does not stream.)
import Router from '@koa/router';
import Koa from 'koa';
import { Agent } from 'undici';
import { requestUpstream } from '../app/src/upstream/upstream-request.ts';
import { BENCH_UPSTREAM_KEY } from './setup.ts';

const upstream = new URL(process.env.OPENAI_BASE_URL ?? 'http://127.0.0.1:1/v1');
const agent = new Agent({ keepAliveTimeout: 30_000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);
const never = new AbortController().signal;

const router = new Router();
router.get('/health/live', (ctx) => {
  ctx.body = { status: 'ok' };
});
async function forward(ctx: Koa.Context): Promise<void> {
  const chunks: Buffer[] = [];
  await new Promise((resolve) => ctx.req.on('data', (c: Buffer) => chunks.push(c)).once('end', resolve));
  const answer = await requestUpstream(
    agent,
    {
      origin: upstream.origin,
      path: `${upstream.pathname}/chat/completions`,
      method: 'POST',
      headers: {
        authorization: `Bearer ${BENCH_UPSTREAM_KEY}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: Buffer.concat(chunks),
    },
    never,
    { errorBodyLimit: 64 * 1024, streamSuccess: false },
  );
  ctx.status = answer.statusCode;
  for (const [name, value] of Object.entries(answer.headers))
    if (!HOP.has(name) && value !== undefined) ctx.set(name, value);
  ctx.body = answer.body;
}
// Served ahead of the router, as the proxy serves its OpenAI paths (exactPostRoutes in app.ts).
new Koa()
  .use((ctx, next) => (ctx.method === 'POST' && ctx.path === '/v1/chat/completions' ? forward(ctx) : next()))
  .use(router.routes())
  .listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
