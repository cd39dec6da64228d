# syntax=docker/dockerfile:1
# The OAuth server as a container: built in one stage, run in a slim one as
# the unprivileged "node" user. Configure it with the environment variables
# of SPEC.md; docker-compose.yml wires it to PostgreSQL and Redis.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# The build also makes the migrated empty embedded database a fresh DATA_DIR starts from (dist/pglite/).
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# `npm start` works here too: with no src/ to build from, it runs dist/ as it is.
COPY scripts ./scripts
COPY migrations ./migrations
COPY views ./views
COPY public ./public
# Only the embedded database (no DATABASE_URL) writes here.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
