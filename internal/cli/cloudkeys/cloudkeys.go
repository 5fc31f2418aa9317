// Package cloudkeys builds lacre's cloud master keys (AWS KMS, GCP KMS,
// Azure Key Vault) from the environment, as the sops CLI does. It links the
// cloud SDKs, so only lacre-cluster imports it: it is the cloudproto.Keys of
// lacre-cluster's commands, and lacre reaches it through lacre-cluster's
// hidden __cloud-keys command.
package cloudkeys

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/api/option"

	"github.com/lacre/lacre/internal/cli/cloudproto"
	"github.com/lacre/lacre/internal/cli/keysource"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/keys/awskms"
	"github.com/lacre/lacre/keys/azkv"
	"github.com/lacre/lacre/keys/gcpkms"
	"github.com/lacre/lacre/rules"
)

// Keys implements cloudproto.Keys with the environment getenv reads.
type Keys struct {
	getenv func(string) string

	gcpOnce sync.Once
	gcp     gcpkms.Options
	gcpErr  error
}

var _ cloudproto.Keys = (*Keys)(nil)

// New returns the cloud keys of the environment getenv reads.
func New(getenv func(string) string) *Keys { return &Keys{getenv: getenv} }

// Recipient builds the recipient of a rule key of a cloud type.
func (c *Keys) Recipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	switch k.Type {
	case keys.TypeKMS:
		return awskms.NewRecipient(awskms.Key{ARN: k.Value, Role: k.Role, Profile: k.AWSProfile, Context: k.Context}, c.awsOptions())
	case keys.TypeGCPKMS:
		o, err := c.gcpOptions()
		if err != nil {
			return nil, err
		}
		return gcpkms.NewRecipient(k.Value, o)
	case keys.TypeAzureKV:
		return azkv.NewRecipient(k.Value, azkv.Options{})
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", k.Type)
}

// RecipientFromStanza rebuilds the recipient of a cloud stanza.
func (c *Keys) RecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	switch s.Type {
	case keys.TypeKMS:
		return awskms.RecipientFromStanza(s, c.awsOptions())
	case keys.TypeGCPKMS:
		o, err := c.gcpOptions()
		if err != nil {
			return nil, err
		}
		return gcpkms.RecipientFromStanza(s, o)
	case keys.TypeAzureKV:
		return azkv.RecipientFromStanza(s, azkv.Options{})
	}
	return nil, fmt.Errorf("master key type %q is not supported yet", s.Type)
}

// Identities returns one identity per cloud; each calls its service only
// for stanzas of its type.
func (c *Keys) Identities() ([]keys.Identity, []error) {
	ids := []keys.Identity{awskms.NewIdentity(c.awsOptions())}
	var errs []error
	if o, err := c.gcpOptions(); err != nil {
		errs = append(errs, err)
	} else {
		ids = append(ids, gcpkms.NewIdentity(o))
	}
	// Azure: DefaultAzureCredential (environment service principal,
	// workload identity, managed identity, Azure CLI), as sops does.
	ids = append(ids, azkv.NewIdentity(azkv.Options{}))
	return ids, errs
}

// gcpOptions reads what sops reads: GOOGLE_CREDENTIALS (a file path or the
// JSON itself), GOOGLE_OAUTH_ACCESS_TOKEN and SOPS_GCP_KMS_ENDPOINT; with
// none set, Application Default Credentials.
func (c *Keys) gcpOptions() (gcpkms.Options, error) {
	c.gcpOnce.Do(func() { c.gcp, c.gcpErr = c.loadGCPOptions() })
	return c.gcp, c.gcpErr
}

func (c *Keys) loadGCPOptions() (gcpkms.Options, error) {
	o := gcpkms.Options{Endpoint: c.getenv("SOPS_GCP_KMS_ENDPOINT"), AccessToken: c.getenv("GOOGLE_OAUTH_ACCESS_TOKEN")}
	if cred := strings.TrimSpace(c.getenv("GOOGLE_CREDENTIALS")); cred != "" {
		if strings.HasPrefix(cred, "{") {
			o.CredentialsJSON = []byte(cred)
		} else {
			data, err := keysource.ReadBounded(cred, 1<<20)
			if err != nil {
				return o, fmt.Errorf("GOOGLE_CREDENTIALS: %w", err)
			}
			o.CredentialsJSON = data
		}
	}
	if d := c.getenv("SOPS_GCP_KMS_UNIVERSE_DOMAIN"); d != "" {
		o.ClientOptions = append(o.ClientOptions, option.WithUniverseDomain(d))
	}
	return o, nil
}

// awsOptions leaves credentials, region profile and endpoint
// (AWS_ENDPOINT_URL) to the SDK's default chain, as sops does.
func (c *Keys) awsOptions() awskms.Options { return awskms.Options{} }
