import { fileURLToPath } from 'node:url';
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import type { ImageTags } from './config.ts';

// The images: Postgres, Redis and nginx pulled by pinned tag onto the Docker host, and the app
// image built there from the repo's Dockerfile (the build context is sent to the host's daemon,
// local or over SSH; no registry is involved).

/** The repository root: the app image's build context (resolved from this file, not the cwd). */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

export interface ImagesArgs {
  provider: docker.Provider;
  tags: ImageTags;
  stack: string;
}

export class Images extends pulumi.ComponentResource {
  /** Image IDs of the pulled images, for the containers. */
  readonly postgres: pulumi.Output<string>;
  readonly redis: pulumi.Output<string>;
  readonly nginx: pulumi.Output<string>;
  /** The built app image's ID (changes with every build, so containers follow it). */
  readonly app: pulumi.Output<string>;
  /** The app image's stable tag on the host, for the provisioning hooks' `docker run`. */
  readonly appTag: pulumi.Output<string>;
  readonly appImage: docker.Image;

  constructor(name: string, args: ImagesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('gpt-proxy:appliance:Images', name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const pull = (key: 'postgres' | 'redis' | 'nginx') =>
      new docker.RemoteImage(`${name}-${key}`, { name: args.tags[key], keepLocally: true }, child).imageId;
    this.postgres = pull('postgres');
    this.redis = pull('redis');
    this.nginx = pull('nginx');

    this.appImage = new docker.Image(
      `${name}-app`,
      {
        imageName: `gpt-proxy-app:${args.stack}`,
        build: {
          context: REPO_ROOT,
          dockerfile: `${REPO_ROOT}Dockerfile`,
          args: { NODE_BASE: args.tags.nodeBase },
        },
        skipPush: true,
        buildOnPreview: false,
      },
      child,
    );
    this.app = this.appImage.repoDigest;
    this.appTag = this.appImage.imageName;
    this.registerOutputs({ app: this.app, appTag: this.appTag });
  }
}
