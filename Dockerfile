# One image for every subcommand: `webhook`, `sync`, `import`, `report`, `phase`, `convert`.
FROM docker.io/library/node:26-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM docker.io/library/node:26-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# glibc malloc for the sync's list pages (malloc'd Buffers of ~0.5 MB each, freed when V8 collects them): at most two
# arenas (the default allows 8 per core), and a fixed 128 KiB mmap threshold (by default it rises to the size of the
# largest freed block, after which page bodies come from, and stay in, the arena). With the defaults, freed pages
# stayed in RSS through relists (docs/adr/0002). The sync benchmark runs the sync with these settings read from here
# (test/bench/cluster.ts imageEnv).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
USER 65534:65534
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["--help"]
