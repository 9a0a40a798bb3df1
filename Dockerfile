# gpt-proxy application image (repo root Dockerfile): the proxy (default command), certd and the
# provisioning scripts, all run with plain `node` from dist/. The Pulumi program builds it on the
# target Docker host; by hand: docker build -t gpt-proxy-app .
#
# NODE_BASE: the Node 24 base, pinned by the stack's `images.nodeBase` (slim: no compilers, no curl).
ARG NODE_BASE=node:24-bookworm-slim

# --- build: all dependencies (TypeScript and the type packages are devDependencies), then tsc.
FROM ${NODE_BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# package.json's allowScripts keeps dependencies' install scripts from running.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY app ./app
COPY scripts ./scripts
RUN npm run build

# --- runtime: production dependencies only (the Pulumi packages are devDependencies and stay out)
# and dist/ as `npm run build` left it (compiled code plus the assets copy-assets.ts puts there).
FROM ${NODE_BASE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
# certd and issue-cert write here. Named volumes mounted on these paths start as copies of them,
# owned by the unprivileged `node` user (uid 1000) that everything in this image runs as.
RUN mkdir -p /etc/gpt-proxy/certs /var/www/acme \
  && chown node:node /etc/gpt-proxy/certs /var/www/acme
USER node
EXPOSE 8000 9464
# /health/live answers 200 while the process serves (certd's containers override this check).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health/live').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same command as infra/app.ts APP_COMMAND (why the flags: see infra/node-flags.ts).
CMD ["node", "--max-semi-space-size=16", "--heap-growing-percent=100", "dist/app/src/main.js"]
