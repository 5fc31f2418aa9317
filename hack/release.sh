#!/usr/bin/env bash
# Build lacre's release into dist/ (or $OUT): archives for every supported
# OS/arch, the multi-arch image (OCI layout tar, no container daemon),
# install.yaml pinned to the image by digest, CycloneDX SBOMs and
# checksums.txt. Reproducible: SOURCE_DATE_EPOCH is the commit's time, so
# two runs on the same commit give byte-identical files.
#   ./hack/release.sh 0.2.0
#   OUT=/tmp/dist PLATFORMS=host IMAGE_PLATFORMS=host ./hack/release.sh 0.2.0-rc.1
# Then: podman load -i dist/lacre_0.2.0_image.oci.tar, or
#   skopeo copy --all oci-archive:dist/lacre_0.2.0_image.oci.tar docker://ghcr.io/lacre/lacre:v0.2.0
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: hack/release.sh VERSION}
out=${OUT:-dist}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "release: the work tree has uncommitted changes; the release would not be that commit" >&2
  exit 1
fi

# The SBOM generator, a Go tool, built once into .cache/.
tools=$(pwd)/.cache/release-tools
if [ ! -x "$tools/cyclonedx-gomod" ]; then
  GOBIN=$tools GOFLAGS= go install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0
fi

args=(-out "$out" -version "$version" -sbom-tool "$tools/cyclonedx-gomod")
[ -n "${PLATFORMS:-}" ] && args+=(-platforms "$PLATFORMS")
[ -n "${IMAGE_PLATFORMS:-}" ] && args+=(-image-platforms "$IMAGE_PLATFORMS")
go run ./hack/release "${args[@]}"
echo "release $version in $out:" >&2
cat "$out/checksums.txt" >&2
