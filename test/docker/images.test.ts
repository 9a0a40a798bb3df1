// The image cache: tags are content hashes of exactly what each build reads (the app image's
// context as its .dockerignore sends it), every image exists after ensureImages, a second call
// builds nothing, and the Debian base is the bookworm minbase the stand-ins are built on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { contextFiles, ignoreRules, isExcluded } from './context-hash.ts';
import { IMAGE_NAMES, type ImageTags, imageTags, REPO_ROOT } from './recipes.ts';
import { openTestBed } from './testbed.ts';

const bed = await openTestBed();

describe('image cache keys', () => {
  test('follow Docker .dockerignore rules', () => {
    const rules = ignoreRules(REPO_ROOT);
    assert.equal(isExcluded('app/src/main.ts', rules), false);
    assert.equal(isExcluded('app/node_modules/x/index.js', rules), true, '**/node_modules wins after !app');
    assert.equal(isExcluded('test/docker/images.test.ts', rules), true);
    assert.equal(isExcluded('Dockerfile', rules), false);
    const files = contextFiles(REPO_ROOT);
    assert.ok(files.includes('package-lock.json') && files.includes('tsconfig.build.json'));
    assert.ok(files.some((f) => f.startsWith('scripts/')));
    assert.ok(!files.some((f) => /^(test|infra|nginx|docs|dist|node_modules)\//.test(f)), files.join(' '));
  });

  test('are stable, distinct and registry-free image references', () => {
    const tags = imageTags();
    assert.deepEqual(imageTags(), tags);
    assert.equal(new Set(Object.values(tags)).size, IMAGE_NAMES.length);
    for (const tag of Object.values(tags)) {
      // The Pulumi program's check for images.* (infra/config.ts), so a stack can point at them.
      assert.match(tag, /^gpt-proxy-test\/[a-z-]+:[a-z0-9.]+-[0-9a-f]{16}$/);
      assert.match(tag, /^[a-z0-9][a-z0-9._/:-]*$/);
    }
  });
});

describe('image builds', { skip: bed.skip }, () => {
  let tags: ImageTags;

  before(async () => {
    tags = await bed.images();
  });
  after(() => bed.stop());

  test('every image exists, and ensuring them again builds nothing', async (t) => {
    for (const { name, seconds } of bed.built) t.diagnostic(`built ${name} in ${seconds} s`);
    for (const name of IMAGE_NAMES) {
      const label = await bed.cli.text([
        'image',
        'inspect',
        '--format',
        '{{index .Config.Labels "gpt-proxy-test.image"}}',
        tags[name],
      ]);
      assert.equal(label, name);
    }
    const before = bed.built.length;
    await bed.images();
    assert.equal(bed.built.length, before);
  });

  test('the Debian base is bookworm and starts no services inside builds', async () => {
    const run = (script: string) => bed.cli.text(['run', '--rm', tags.debian, 'sh', '-c', script]);
    assert.match(await run('. /etc/os-release && echo "$VERSION_CODENAME"'), /^bookworm$/);
    assert.equal(await run('/usr/sbin/policy-rc.d; echo $?'), '101');
    assert.equal(
      await bed.cli.text(['image', 'inspect', '--format', '{{json .Config.Cmd}}', tags.debian]),
      '["bash"]',
    );
  });
});
