import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countEvents, SseBlocks } from '../../app/src/http/sse.ts';
import { StreamUsage, withUsageRequested } from '../../app/src/usage/stream-usage.ts';

const chunk = (i: number) =>
  `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"w${i}"}}],"usage":null}\n\n`;
const USAGE =
  'data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n';
const DONE = 'data: [DONE]\n\n';

/** Feeds `text` to the splitter in pieces of `size` bytes and collects what the filter returns. */
function relay(text: string, size: number, filter: (b: Buffer) => Buffer | string = (b) => b): string {
  const blocks = new SseBlocks();
  const bytes = Buffer.from(text);
  let out = '';
  for (let i = 0; i < bytes.length; i += size) {
    const block = blocks.push(bytes.subarray(i, i + size));
    if (block) out += String(filter(block));
  }
  const rest = blocks.end();
  if (rest) out += String(filter(Buffer.concat([rest, Buffer.from('\n\n')])));
  return out;
}

describe('SSE blocks', () => {
  it('passes every event through whole, however the bytes are cut (multi-byte characters too)', () => {
    const text = `${chunk(1)}data: {"delta":"héllo ✓ 😀"}\n\n${chunk(2)}${DONE}`;
    for (const size of [1, 2, 3, 7, 64, 4096]) assert.equal(relay(text, size), text, `pieces of ${size}`);
  });

  it('never holds back a complete event, and holds an incomplete one', () => {
    const blocks = new SseBlocks();
    assert.equal(String(blocks.push(Buffer.from(`${chunk(1)}data: {"par`))), chunk(1));
    assert.equal(blocks.push(Buffer.from('tial":1}')), undefined);
    assert.equal(String(blocks.push(Buffer.from('\n\n'))), 'data: {"partial":1}\n\n');
  });

  it('CRLF and CR-delimited streams split as well', () => {
    const crlf = 'data: a\r\n\r\ndata: b\r\n\r\n';
    assert.equal(relay(crlf, 3), crlf);
    const blocks = new SseBlocks();
    assert.equal(String(blocks.push(Buffer.from('data: a\r\rdata: b'))), 'data: a\r\r');
  });

  it('counts events', () => {
    assert.equal(countEvents(Buffer.from(chunk(1) + chunk(2) + DONE)), 3);
  });
});

describe('stream usage filter on blocks', () => {
  const stream = [1, 2, 3, 4].map(chunk).join('') + USAGE + DONE;

  it('reads the usage report and drops its chunk when the client did not ask for usage', () => {
    for (const size of [5, 100, 4096]) {
      const tracker = new StreamUsage('chat/completions', false);
      const out = relay(stream, size, tracker.filterBlock);
      assert.equal(out, [1, 2, 3, 4].map(chunk).join('') + DONE);
      assert.deepEqual(tracker.usage, { prompt: 9, completion: 3, total: 12 });
      assert.equal(tracker.contentEvents, 4);
    }
  });

  it('finds a report written with a space (`"usage": {`), and not one quoted inside content', () => {
    const quoted = `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: '"usage":{"prompt_tokens":1}' } }], usage: null })}\n\n`;
    const spaced = USAGE.replace('"usage":{', '"usage": {');
    for (const size of [7, 4096]) {
      const tracker = new StreamUsage('chat/completions', false);
      assert.equal(
        relay(quoted + chunk(1) + spaced + DONE, size, tracker.filterBlock),
        quoted + chunk(1) + DONE,
      );
      assert.deepEqual(tracker.usage, { prompt: 9, completion: 3, total: 12 });
      assert.equal(tracker.contentEvents, 2);
    }
  });

  it('keeps the usage chunk when the client asked for it; byte for byte', () => {
    const tracker = new StreamUsage('chat/completions', true);
    assert.equal(relay(stream, 4096, tracker.filterBlock), stream);
    assert.deepEqual(tracker.usage, { prompt: 9, completion: 3, total: 12 });
  });

  it('Responses streams: usage from response.completed', () => {
    const tracker = new StreamUsage('responses', true);
    const events =
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n' +
      'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}\n\n';
    assert.equal(relay(events, 16, tracker.filterBlock), events);
    assert.deepEqual(tracker.usage, { prompt: 5, completion: 2, total: 7 });
    assert.equal(tracker.contentEvents, 1);
  });
});

describe('errors the upstream reports inside a 200 stream', () => {
  const midStreamError =
    'data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}\n\n';

  it('chat: OpenAI\'s `data: {"error":…}` event (no [DONE] after it) is noticed, passed on, not counted as content', () => {
    const stream = [1, 2].map(chunk).join('') + midStreamError;
    for (const size of [5, 100, 4096]) {
      const tracker = new StreamUsage('chat/completions', false);
      assert.equal(relay(stream, size, tracker.filterBlock), stream, `pieces of ${size}`);
      assert.equal(tracker.upstreamFailed, true, `pieces of ${size}`);
      assert.equal(tracker.contentEvents, 2);
    }
    const spaced = midStreamError.replace('{"error":', '{ "error": ');
    const crlf = (chunk(1) + spaced).replaceAll('\n\n', '\r\n\r\n');
    const tracker = new StreamUsage('completions', false);
    // A block with carriage returns goes event by event (each sent on with a plain blank line).
    assert.equal(relay(crlf, 4096, tracker.filterBlock), chunk(1) + spaced);
    assert.equal(tracker.upstreamFailed, true, 'written with spaces, CRLF-delimited');
  });

  it('chat: "error" elsewhere is no error: in content, or in an Azure content filter result', () => {
    const content = `data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta: { content: 'error' } }] })}\n\n`;
    const quoted = `data: ${JSON.stringify({ id: 'c', choices: [{ index: 0, delta: { content: '{"error":1}' } }] })}\n\n`;
    const azure = `data: ${JSON.stringify({
      choices: [
        {
          index: 0,
          delta: { content: 'x' },
          content_filter_results: { error: { code: 'content_filter_error', message: 'not filtered' } },
        },
      ],
    })}\n\n`;
    const stream = content + quoted + azure + DONE;
    for (const size of [7, 4096]) {
      const tracker = new StreamUsage('chat/completions', false);
      assert.equal(relay(stream, size, tracker.filterBlock), stream);
      assert.equal(tracker.upstreamFailed, false, `pieces of ${size}`);
      assert.equal(tracker.contentEvents, 3);
    }
  });

  it('Responses: an `error` event, or `response.failed` (its usage still read); not `response.incomplete`', () => {
    const delta =
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi","sequence_number":1}\n\n';
    const error =
      'event: error\ndata: {"type":"error","code":"server_error","message":"The server had an error","param":null,"sequence_number":2}\n\n';
    const failed =
      'event: response.failed\ndata: {"type":"response.failed","sequence_number":2,"response":{"status":"failed","error":{"code":"server_error","message":"m"},"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}}\n\n';
    const incomplete =
      'event: response.incomplete\ndata: {"type":"response.incomplete","sequence_number":2,"response":{"status":"incomplete","error":null,"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}}\n\n';
    for (const [end, failedToo] of [
      [error, true],
      [failed, true],
      [incomplete, false],
    ] as const) {
      for (const size of [9, 4096]) {
        const tracker = new StreamUsage('responses', true);
        assert.equal(relay(delta + end, size, tracker.filterBlock), delta + end);
        assert.equal(tracker.upstreamFailed, failedToo, `${end.slice(0, 24)} in pieces of ${size}`);
        assert.equal(tracker.contentEvents, 1);
      }
    }
    const tracker = new StreamUsage('responses', true);
    relay(delta + failed, 4096, tracker.filterBlock);
    assert.deepEqual(tracker.usage, { prompt: 5, completion: 1, total: 6 });
  });
});

describe('asking the upstream for usage', () => {
  const parse = (b: Buffer | undefined) => JSON.parse(String(b));

  it('adds stream_options to the client body as it came, without serialising it again', () => {
    const raw = Buffer.from(
      '{ "model": "gpt-4o", "messages": [{"role":"user","content":"}{"}], "stream": true }\n',
    );
    const asked = withUsageRequested(JSON.parse(String(raw)), raw);
    assert.ok(asked?.body.subarray(0, 60).equals(raw.subarray(0, 60)), 'the client bytes are kept');
    assert.deepEqual(parse(asked?.body), {
      ...JSON.parse(String(raw)),
      stream_options: { include_usage: true },
    });
  });

  it('merges into stream_options the client sent, and leaves a body that already asks alone', () => {
    const json = { model: 'm', messages: [1], stream: true, stream_options: { include_usage: false, x: 1 } };
    const asked = withUsageRequested(json, Buffer.from(JSON.stringify(json)));
    assert.deepEqual(parse(asked?.body).stream_options, { include_usage: true, x: 1 });
    const already = { ...json, stream_options: { include_usage: true } };
    assert.equal(withUsageRequested(already, Buffer.from(JSON.stringify(already))), undefined);
  });
});
