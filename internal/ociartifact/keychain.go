package ociartifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// maxDockerConfig bounds the config.json read.
const maxDockerConfig = 1 << 20

// DockerConfig returns the keychain of the docker config.json in dir (the
// CLI passes $DOCKER_CONFIG or ~/.docker), as docker login writes it:
// "auths" entries, credential helpers and credsStore. A missing file
// means anonymous access.
func DockerConfig(dir string) (authn.Keychain, error) {
	file := filepath.Join(dir, "config.json")
	cf := configfile.New(file)
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return dockerKeychain{cf}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDockerConfig+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDockerConfig {
		return nil, fmt.Errorf("%s: larger than 1 MiB", file)
	}
	if err := cf.LoadFromReader(strings.NewReader(string(data))); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return dockerKeychain{cf}, nil
}

type dockerKeychain struct{ cf *configfile.ConfigFile }

// Resolve finds the credentials of r's registry (Docker Hub's under its
// historical key).
func (k dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	key := r.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	ac, err := k.cf.GetAuthConfig(key)
	if err != nil {
		return nil, err
	}
	cfg := authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if cfg == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(cfg), nil
}

// Credentials parses flux's --creds: "user:password", or a single
// registry token.
func Credentials(creds string) (authn.Authenticator, error) {
	if creds == "" {
		return nil, errors.New("credentials cannot be empty")
	}
	user, pass, ok := strings.Cut(creds, ":")
	if !ok {
		return authn.FromConfig(authn.AuthConfig{RegistryToken: creds}), nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
}
