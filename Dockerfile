# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build -t envoy-authz-sidecar .               the product: the authz sidecar alone (target `sidecar`,
#                                                       the last stage, so the default)
#   docker build --target demo -t envoy-authz-demo .    the demo: sidecar, bank, dev IdP, dev-token, web app;
#                                                       docker-compose.yml builds this one
# Dev dependencies (TypeScript, Vite) are needed to compile, but never reach either runtime image.

# Every dependency, for compiling. Manifests first so the layer is reused while only sources change.
FROM node:24-bookworm-slim AS dev-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci

# Production dependencies only, shared by both runtime images.
FROM node:24-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# The sidecar's JavaScript, compiled from its own tsconfig: it includes src/ but not src/demo/, and as a
# composite project tsc refuses (TS6307) any sidecar module that imports a demo one. Output: dist-sidecar/.
FROM dev-deps AS sidecar-build
COPY tsconfig.json tsconfig.build.json tsconfig.sidecar.json ./
COPY src ./src
RUN npx tsc -p tsconfig.sidecar.json

# Everything for the demo: all of src/ into dist/, and the bank's web app (bundled by Vite into dist/web,
# served by `authz bank` under /app/).
FROM dev-deps AS demo-build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
RUN npx tsc -p tsconfig.build.json && npx vite build --config web/vite.config.ts

# The demo image (docker-compose.yml: `target: demo`): the sidecar plus the bank, the dev IdP, dev-token,
# the step-up client and the web app.
FROM node:24-bookworm-slim AS demo
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=demo-build /app/dist ./dist
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

# The product image, and the default target: `authz serve` and the policy tools (check-policy, explain,
# test, diff), with production dependencies and the protos. No demo code is in it (no dist/demo/, no web
# app), so `authz bank`, `dev-token`, `dev-idp` and `demo-client` are unknown commands here.
FROM node:24-bookworm-slim AS sidecar
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=sidecar-build /app/dist-sidecar ./dist
COPY protos ./protos
# Built for a read-only root file system (`docker run --read-only`, Kubernetes readOnlyRootFilesystem):
# at run time nothing is written under /app or anywhere else; logs go to stdout and the policy is only
# read (and watched). The files are root-owned, so the unprivileged `node` user could not change them
# anyway. No policy is baked in: mount yours at /etc/authz/policy.yaml (read-only), or pass --policy /
# AUTHZ_POLICY. It listens on 127.0.0.1:9001, for the Envoy beside it in the pod; --listen to change.
USER node
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--policy", "/etc/authz/policy.yaml"]
