/**
 * Images. A RemoteImage is looked up on the engine and pulled only when missing (no registry is
 * reachable from the test bed, so a missing one fails with the engine's reason). A docker.Image
 * runs the same `docker build` the provider runs - its context, Dockerfile, build arguments and
 * tag - on the engine, with one difference: `--network host`, because the test engine has no
 * default bridge, so a step that needs apt or npm must use the host's network (the test bed's own
 * builds do the same). Its layer cache makes this quick when the test bed has built that image.
 * An unpushed image's `repoDigest` is its image ID, which is what its containers then run.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Driver, DriverContext } from './driver.ts';
import { q } from './engine.ts';
import { InputReader, refuse } from './inputs.ts';

const BUILD_TIMEOUT_MS = 20 * 60_000;

interface ImageInspect {
  Id: string;
  RepoDigests?: string[];
}

async function inspectImage(ctx: DriverContext, ref: string): Promise<ImageInspect | undefined> {
  const { status, body } = await ctx.engine.call('GET', `/images/${q(ref)}/json`, { accept: [404] });
  return status === 404 ? undefined : (JSON.parse(body.toString('utf8')) as ImageInspect);
}

export const remoteImageDriver: Driver = {
  docker: true,
  readsOutside: true,
  check(inputs) {
    inputs.only(['name', 'keepLocally']);
  },
  async create(ctx, inputs) {
    const name = inputs.requireString('name');
    let image = await inspectImage(ctx, name);
    if (!image) {
      ctx.log(`pulling ${name}`);
      await ctx.engine.call('POST', `/images/create?fromImage=${q(name)}`, { timeoutMs: 10 * 60_000 });
      image = await inspectImage(ctx, name);
      if (!image) throw new Error(`image ${name}: not there after a pull`);
    }
    return { id: image.Id, imageId: image.Id, repoDigest: image.RepoDigests?.[0] ?? '' };
  },
  async delete(ctx, applied) {
    const inputs = new InputReader(applied, applied.inputs);
    if (inputs.boolean('keepLocally') === true) return;
    await ctx.engine.call('DELETE', `/images/${q(inputs.requireString('name'))}`, { accept: [404, 409] });
  },
};

export const imageDriver: Driver = {
  docker: true,
  readsOutside: true,
  check(inputs) {
    inputs.only(['imageName', 'build', 'skipPush', 'buildOnPreview']);
    if (inputs.boolean('skipPush') !== true)
      refuse(inputs.resource, 'skipPush', 'must be true: no registry is reachable');
    const build = inputs.object('build') ?? refuse(inputs.resource, 'build', 'is required');
    build.only(['context', 'dockerfile', 'args', 'target']).record('args');
  },
  async create(ctx, inputs, logicalName) {
    const build = inputs.object('build') ?? refuse(inputs.resource, 'build', 'is required');
    const tag = inputs.requireString('imageName');
    const args = Object.entries(build.record('args') ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
    const target = build.string('target');
    const dockerfile = build.string('dockerfile');
    const logFile = join(ctx.workDir, `build-${logicalName}.log`);
    const log = createWriteStream(logFile);
    const started = Date.now();
    let failure: Error | undefined;
    try {
      await ctx.cli.run(
        ['build', '--network', 'host', '--tag', tag, ...args]
          .concat(dockerfile ? ['--file', dockerfile] : [], target ? ['--target', target] : [])
          .concat([build.requireString('context')]),
        { timeoutMs: BUILD_TIMEOUT_MS, onOutput: (chunk) => log.write(chunk) },
      );
    } catch (err) {
      failure = err as Error;
    }
    await new Promise((resolve) => log.end(resolve));
    if (failure) {
      const tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-30).join('\n');
      throw new Error(`${failure.message.split('\n')[0]}\n--- ${logFile} (end) ---\n${tail}`);
    }
    const image = await inspectImage(ctx, tag);
    if (!image) throw new Error(`image ${tag}: not there after the build`);
    const output = readFileSync(logFile, 'utf8');
    const steps = output.match(/^Step \d+\/\d+ :/gm)?.length ?? 0;
    const cached = output.match(/^ ---> Using cache$/gm)?.length ?? 0;
    ctx.log(
      `built ${tag} in ${((Date.now() - started) / 1000).toFixed(1)} s (${steps} steps, ${cached} from cache)`,
    );
    return { id: image.Id, repoDigest: image.Id, imageName: tag };
  },
  // Built images stay on the host, as with `pulumi destroy`.
  async delete() {},
};
