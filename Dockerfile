# syntax=docker/dockerfile:1
# The authz sidecar image; the same image also runs the demo bank upstream (`authz bank`), see
# docker-compose.yml. Build with: docker build -t envoy-authz-sidecar .

# Build stage: dev dependencies (TypeScript) are needed to compile, but never reach the runtime image.
FROM node:22-bookworm-slim AS build
WORKDIR /app
# Manifests first so the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY protos ./protos
# The bank's web app (bundled by Vite into dist/web, served by `authz bank` under /app/).
COPY web ./web
RUN npm run build

# Runtime stage: production dependencies and compiled JavaScript only.
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# The gRPC service definitions are loaded at run time (proto-loader), not compiled in.
COPY protos ./protos
# A default policy so the image starts on its own; docker-compose.yml mounts the repo's policy.yaml over it.
# Its JWKS is read from .authz-dev/ next to the policy, i.e. mount the dev keys at /etc/authz/.authz-dev.
COPY policy.yaml /etc/authz/policy.yaml
# Files stay root-owned and read-only to the service: a compromised process cannot rewrite its own code
# or policy. The base image's unprivileged `node` user runs it.
USER node
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--policy", "/etc/authz/policy.yaml"]
