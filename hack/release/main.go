// Command release builds lacre's release into a directory (see package
// internal/release and hack/release.sh):
//
//	go run ./hack/release -out dist -version 0.2.0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/lacre/lacre/internal/release"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run() error {
	o := release.Options{Log: os.Stderr}
	var platforms, imagePlatforms, epoch string
	flag.StringVar(&o.Out, "out", "dist", "output directory (must be empty or missing)")
	flag.StringVar(&o.Root, "root", ".", "the module's root directory")
	flag.StringVar(&o.Version, "version", "", "version, without the v (required)")
	flag.StringVar(&o.Commit, "commit", "", "commit (default: git rev-parse HEAD)")
	flag.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time of every file (default: $SOURCE_DATE_EPOCH, else the commit's time)")
	flag.StringVar(&platforms, "platforms", join(release.Platforms), "archives' OS/ARCH list; host is this machine's")
	flag.StringVar(&imagePlatforms, "image-platforms", join(release.ImagePlatforms), "image's OS/ARCH list")
	flag.StringVar(&o.ImageRepo, "image-repo", release.DefaultImageRepo, "image repository install.yaml names")
	flag.StringVar(&o.SBOMTool, "sbom-tool", "", "path of cyclonedx-gomod (empty: no SBOM)")
	flag.Parse()
	if o.Version == "" {
		return fmt.Errorf("-version is required")
	}
	o.Version = strings.TrimPrefix(o.Version, "v")
	var err error
	if o.Platforms, err = release.ParsePlatforms(platforms); err != nil {
		return err
	}
	if o.ImagePlatforms, err = release.ParsePlatforms(imagePlatforms); err != nil {
		return err
	}
	if o.Commit == "" {
		if o.Commit, err = git(o.Root, "rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if epoch == "" {
		if epoch, err = git(o.Root, "log", "-1", "--format=%ct", o.Commit); err != nil {
			return err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH %q: %v", epoch, err)
	}
	o.Epoch = time.Unix(sec, 0).UTC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := release.Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("image\t%s\n", res.ImageRef)
	for _, f := range res.Files {
		fmt.Printf("file\t%s\n", f)
	}
	return nil
}

func git(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func join(ps []release.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}
