# One image for every subcommand: `webhook`, `sync`, `import`, `report`, `phase`, `convert`.
FROM docker.io/library/node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM docker.io/library/node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# At most two glibc malloc arenas (the default allows 8 per core, one per thread that asks): the sync's list pages are
# malloc'd Buffers, and with the default more of what they freed stayed in RSS through relists (docs/adr/0002). The
# sync benchmark runs the sync with this line's setting (test/bench/cluster.ts imageEnv).
ENV MALLOC_ARENA_MAX=2
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
USER 65534:65534
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["--help"]
