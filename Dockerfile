# syntax=docker/dockerfile:1
# volc-scim-bridge container image: build with the same commands CI runs, ship only production
# dependencies and the compiled JavaScript, run as an unprivileged user.

# Node 24 LTS (supported until April 2028; Node 20 reached end of life in April 2026, 22 follows in
# April 2027). Debian slim rather than Alpine: better-sqlite3 is a native addon, and on glibc
# `prebuild-install` fetches its prebuilt binary instead of compiling it against musl.
ARG NODE_IMAGE=node:24-trixie-slim

# ---- build: full dependency tree from the lockfile, TypeScript → dist/, then production deps ----
FROM ${NODE_IMAGE} AS build
# The compiler toolchain lives in this stage only: node-gyp needs it when no prebuilt better-sqlite3
# binary can be fetched (offline build, other architecture).
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# Replace the tree with production dependencies only, native addon included, for the runtime stage.
RUN npm ci --omit=dev --no-audit --no-fund

# ---- runtime: no compiler, no npm install; dist/ and node_modules/ come from the build stage ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/data
WORKDIR /app
# package.json: "type": "module" tells node that dist/*.js are ES modules.
COPY package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The embedded store lives on this volume, owner-only (it holds names and e-mail addresses; a new
# named volume copies this mode); uid 1000 is the image's `node` user. NODE_ENV=production needs
# Volcengine credentials: the in-process emulator is for trials outside production.
RUN mkdir -p /data && chown 1000:1000 /data && chmod 700 /data
VOLUME ["/data"]
USER 1000:1000
EXPOSE 8080
# No curl or wget needed: node itself probes the liveness endpoint.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
