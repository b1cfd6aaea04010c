#!/bin/sh
# Builds the cellar image: a static cellctl (CGO_ENABLED=0) in an image FROM scratch.
# Nothing is pulled. The image is tagged $CELLAR_IMAGE (default cellar:latest), the
# name deploy/docker-compose.yml uses.
#
#   deploy/build-images.sh            # then: docker-compose -f deploy/docker-compose.yml up -d
#   CELLAR_IMAGE=cellar:test deploy/build-images.sh
set -eu
cd "$(dirname "$0")/.."
image=${CELLAR_IMAGE:-cellar:latest}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT INT TERM

echo "building cellctl (static, linux/$(go env GOARCH))"
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o "$ctx/cellctl" ./cmd/cellctl
mkdir "$ctx/data"
mkdir -m 0700 "$ctx/pki"
cp deploy/Dockerfile "$ctx/Dockerfile"

# Without the buildx plugin, BuildKit cannot run: use the classic builder.
if ! docker buildx version >/dev/null 2>&1; then
	DOCKER_BUILDKIT=0
	export DOCKER_BUILDKIT
fi
echo "building image $image"
if ! out=$(docker build --tag "$image" "$ctx" 2>&1); then
	echo "$out" >&2
	exit 1
fi
docker image inspect --format "$image {{.Id}} {{.Size}} bytes" "$image"
