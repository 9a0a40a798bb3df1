// The fake upstream image: test/fake-upstream/main.ts run by the node base stand-in as the `node`
// user, listening on 0.0.0.0:8080, answering OpenAI's API shape on a port published to 127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { processes, waitForHttp } from './probes.ts';
import type { ImageTags } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();

describe('fake upstream image', { skip: bed.skip }, () => {
  let tags: ImageTags;

  before(async () => {
    tags = await bed.images(['fakeUpstream']);
    await bed.network('upstream-net');
  });
  after(() => bed.stop());

  test('serves /v1/models and a chat completion as node on port 8080', async () => {
    const upstream = await bed.run({
      name: 'fake-upstream',
      image: tags.fakeUpstream,
      network: 'upstream-net',
      aliases: ['fake-upstream'],
      publish: [8080],
    });
    const base = `http://127.0.0.1:${await upstream.hostPort(8080)}/v1`;
    const headers = { authorization: 'Bearer sk-test-bed' };
    const models = JSON.parse(await waitForHttp(`${base}/models`, { headers, container: upstream }));
    assert.equal(models.object, 'list');

    const response = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(response.status, 200);
    const completion = (await response.json()) as { choices: Array<{ message: { content: string } }> };
    assert.ok(completion.choices[0]?.message.content);

    const main = (await processes(upstream)).find((p) => p.pid === 1);
    assert.equal(main?.uid, 1000);
    assert.match(main?.cmdline ?? '', /node main\.ts --port 8080 --host 0\.0\.0\.0/);
  });
});
