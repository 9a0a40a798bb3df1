import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { fixedLineWriter } from '../../app/src/log/fixed-line.ts';
import { createLogger, type Logger } from '../../app/src/log/logger.ts';

/** A logger as the proxy makes it, writing into an array. */
function capturing(level: pino.LevelWithSilent = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = { write: (s: string) => lines.push(s) > 0 };
  return { logger: createLogger({ level, promptBody: false }, 'gpt-proxy', sink), lines };
}

// Two calls may fall in different milliseconds; everything else must match byte for byte.
const sameTime = (line: string) => line.replace(/"time":"[^"]*"/, '"time":"T"');

const CASES: Array<Record<string, unknown>> = [
  {
    reqId: 'req_01JDX8ZQ3ABCDEF',
    method: 'POST',
    path: '/v1/chat/completions',
    status: 200,
    ms: 3,
    keyId: 'key_01JDX8ZQ3',
    model: 'gpt-4o-mini',
    stream: false,
    upstreamKeyId: 'uk_01JDX8',
    attempts: 1,
    errorCode: undefined,
  },
  { reqId: undefined, status: 499, streamCompleted: false, model: null },
  {
    path: '/v1/"quoted"\\back\nslash\ttab\u0001\u007f',
    model: 'ü✓😀 \u2028 \ud83d\ude00',
    prompt: `${'a long prompt with "quotes" and \\ and \n '.repeat(20)}`,
  },
  { ms: 0, attempts: -1, ratio: 1.5, nan: Number.NaN, inf: Number.POSITIVE_INFINITY, yes: true },
  {},
];

describe('fixedLineWriter (the access line)', () => {
  it('writes the same bytes as logger.info(fields, msg), for every kind of value the line holds', () => {
    const { logger, lines } = capturing();
    const write = fixedLineWriter(logger, 'request');
    for (const fields of CASES) {
      logger.info(fields, 'request');
      write(fields);
      const [viaPino, viaWriter] = lines.splice(0, 2);
      assert.equal(sameTime(viaWriter as string), sameTime(viaPino as string));
      assert.match(viaWriter as string, /^\{"level":"info","time":"\d{4}-\d\d-\d\dT[\d:.]+Z",.*\}\n$/s);
      JSON.parse(viaWriter as string);
    }
  });

  it('escapes a lone surrogate, which pino writes raw (a U+FFFD once encoded as UTF-8)', () => {
    const { logger, lines } = capturing();
    logger.info({ model: 'a\ud800b' }, 'request');
    fixedLineWriter(logger, 'request')({ model: 'a\ud800b' });
    assert.match(lines[0] as string, /"model":"a\ud800b"/);
    assert.match(lines[1] as string, /"model":"a\\ud800b"/);
    assert.equal(JSON.parse(lines[1] as string).model, 'a\ud800b');
  });

  it("keeps a child logger's bindings, as pino does", () => {
    const { logger, lines } = capturing();
    const child = logger.child({ component: 'edge' });
    child.info({ status: 201 }, 'request');
    fixedLineWriter(child, 'request')({ status: 201 });
    assert.equal(sameTime(lines[1] as string), sameTime(lines[0] as string));
    assert.match(lines[1] as string, /"component":"edge"/);
  });

  it('writes nothing when the level is above info (LOG_LEVEL=warn, silent)', () => {
    for (const level of ['warn', 'silent'] as const) {
      const { logger, lines } = capturing(level);
      fixedLineWriter(logger, 'request')({ status: 200 });
      assert.deepEqual(lines, []);
    }
  });

  it("leaves a destination that wants pino's metadata (multistream) to pino itself", () => {
    const lines: string[] = [];
    const multi = pino.multistream([{ level: 'info', stream: { write: (s: string) => lines.push(s) > 0 } }]);
    const logger = createLogger({ level: 'info', promptBody: false }, 'gpt-proxy', multi);
    fixedLineWriter(logger, 'request')({ status: 200, path: '/v1/embeddings' });
    assert.equal(lines.length, 1);
    assert.deepEqual(
      { ...JSON.parse(lines[0] as string), time: undefined },
      {
        level: 'info',
        time: undefined,
        service: 'gpt-proxy',
        name: 'gpt-proxy',
        status: 200,
        path: '/v1/embeddings',
        msg: 'request',
      },
    );
  });
});
