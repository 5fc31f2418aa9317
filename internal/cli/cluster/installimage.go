package cluster

import (
	"strings"

	"github.com/lacre/lacre/internal/cli/cliapp"
)

// defaultImage is the image `lacre install` runs: this binary's version's
// (or --version's), by tag, and also by digest when the release build
// stamped the image's digest (cliapp.ImageDigest) and no other version
// was asked for.
func defaultImage(version string) string {
	v := version
	if v == "" {
		v = cliapp.Version
	}
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	image := defaultImageRepo + ":" + v
	own := version == "" || strings.TrimPrefix(version, "v") == strings.TrimPrefix(cliapp.Version, "v")
	if own && cliapp.ImageDigest != "" {
		image += "@" + cliapp.ImageDigest
	}
	return image
}
