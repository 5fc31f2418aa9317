// Package gcpkms implements Google Cloud KMS master keys (stanza type
// gcp_kms) with the official client, cloud.google.com/go/kms, as sops
// does: EncryptRequest{Name: resource_id, Plaintext: data key} without
// additional data, the stanza's enc being the base64 (standard, padded)
// ciphertext.
//
// The library reads no environment. The caller passes credentials and the
// endpoint in [Options]; with no credentials set, the client uses Google's
// default credential chain (Application Default Credentials: workload
// identity, the metadata server, GOOGLE_APPLICATION_CREDENTIALS, gcloud).
package gcpkms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"
	"sync"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lacre/lacre/keys"
)

// Options configure the Cloud KMS client. The zero value uses the default
// endpoint and Application Default Credentials.
//
// Credentials are taken in sops's order: CredentialsJSON, then AccessToken,
// then the default chain.
type Options struct {
	// Endpoint overrides the gRPC endpoint, "host:port" (sops:
	// SOPS_GCP_KMS_ENDPOINT).
	Endpoint string
	// CredentialsJSON is a service account key or an authorized-user
	// credentials file (sops: GOOGLE_CREDENTIALS). Other credential types
	// (external account, impersonation) are refused: they make the client
	// contact URLs or run programs named in the file, which is unsafe for
	// credentials taken from a Kubernetes Secret.
	CredentialsJSON []byte
	// AccessToken is a static OAuth 2.0 access token (sops:
	// GOOGLE_OAUTH_ACCESS_TOKEN).
	AccessToken string
	// Insecure dials Endpoint over plaintext gRPC without authentication,
	// for local test servers. It cannot be combined with credentials.
	Insecure bool
	// ClientOptions are appended to the options lacre builds (for example
	// option.WithGRPCDialOption with custom TLS settings).
	ClientOptions []option.ClientOption
}

// resourceID is the form sops accepts.
var resourceID = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$`)

// ParseResourceID checks a crypto key resource name, after removing
// spaces as sops does.
func ParseResourceID(id string) (string, error) {
	id = strings.ReplaceAll(id, " ", "")
	if !resourceID.MatchString(id) {
		return "", fmt.Errorf("invalid gcp kms resource id %q (want projects/P/locations/L/keyRings/R/cryptoKeys/K)", id)
	}
	return id, nil
}

func (o Options) clientOptions() ([]option.ClientOption, error) {
	var co []option.ClientOption
	if o.Endpoint != "" {
		co = append(co, option.WithEndpoint(o.Endpoint))
	}
	switch {
	case o.Insecure:
		if o.Endpoint == "" {
			return nil, errors.New("an insecure connection needs an explicit endpoint")
		}
		if len(o.CredentialsJSON) > 0 || o.AccessToken != "" {
			return nil, errors.New("refusing to send credentials over an insecure connection")
		}
		co = append(co, option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	case len(o.CredentialsJSON) > 0:
		var f struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(o.CredentialsJSON, &f); err != nil {
			return nil, errors.New("the credentials are not valid JSON")
		}
		switch f.Type {
		case "service_account":
			co = append(co, option.WithAuthCredentialsJSON(option.ServiceAccount, o.CredentialsJSON))
		case "authorized_user":
			co = append(co, option.WithAuthCredentialsJSON(option.AuthorizedUser, o.CredentialsJSON))
		default:
			return nil, fmt.Errorf("credentials of type %q are not supported (want service_account or authorized_user)", f.Type)
		}
	case o.AccessToken != "":
		co = append(co, option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.AccessToken, TokenType: "Bearer"})))
	}
	return append(co, o.ClientOptions...), nil
}

// describe names the credentials, never their content.
func (o Options) describe() string {
	var d string
	switch {
	case o.Insecure:
		d = "no credentials (insecure)"
	case len(o.CredentialsJSON) > 0:
		d = "credentials JSON"
	case o.AccessToken != "":
		d = "access token"
	default:
		d = "default credentials"
	}
	if o.Endpoint != "" {
		d += ", endpoint " + o.Endpoint
	}
	return d
}

// scrub removes credential material from an error text and bounds it.
func (o Options) scrub(msg string) string {
	if o.AccessToken != "" {
		msg = strings.ReplaceAll(msg, o.AccessToken, "[redacted]")
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

// client is one lazily dialled Cloud KMS client, shared by all recipients
// and identities made from equal Options. Clients stay open until Close
// (or a Recipient's or Identity's Close): a long-running caller should
// reuse its Options, and build ClientOptions once, since Options with
// ClientOptions are equal only to copies of the same value.
type client struct {
	opts Options
	mu   sync.Mutex
	c    *kms.KeyManagementClient
}

// clientKey identifies Options. Secrets are kept as hashes; ClientOptions
// by their backing array (copies of one Options value share it).
type clientKey struct {
	endpoint    string
	insecure    bool
	credentials [32]byte
	token       [32]byte
	extra       *option.ClientOption
	nextra      int
}

var (
	clientsMu sync.Mutex
	clients   = map[clientKey]*client{}
)

func clientFor(o Options) *client {
	k := clientKey{endpoint: o.Endpoint, insecure: o.Insecure, nextra: len(o.ClientOptions)}
	if len(o.ClientOptions) > 0 {
		k.extra = &o.ClientOptions[0]
	}
	if len(o.CredentialsJSON) > 0 {
		k.credentials = sha256.Sum256(o.CredentialsJSON)
	}
	if o.AccessToken != "" {
		k.token = sha256.Sum256([]byte(o.AccessToken))
	}
	clientsMu.Lock()
	defer clientsMu.Unlock()
	c := clients[k]
	if c == nil {
		c = &client{opts: o}
		clients[k] = c
	}
	return c
}

func (c *client) get(ctx context.Context) (*kms.KeyManagementClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		return c.c, nil
	}
	co, err := c.opts.clientOptions()
	if err != nil {
		return nil, err
	}
	// The client outlives this call: dial without its cancellation.
	kc, err := kms.NewKeyManagementClient(context.WithoutCancel(ctx), co...)
	if err != nil {
		return nil, fmt.Errorf("cannot create the client (%s): %s", c.opts.describe(), c.opts.scrub(err.Error()))
	}
	c.c = kc
	return kc, nil
}

func (c *client) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		return nil
	}
	err := c.c.Close()
	c.c = nil
	return err
}

// Close closes every client this package opened. Recipients and
// identities stay usable: they dial again when next used.
func Close() error {
	clientsMu.Lock()
	all := make([]*client, 0, len(clients))
	for _, c := range clients {
		all = append(all, c)
	}
	clear(clients)
	clientsMu.Unlock()
	var errs []error
	for _, c := range all {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) int64 { return int64(crc32.Checksum(b, castagnoli)) }

// callError describes a failed call: the key, the gRPC code and the
// server's message, without credentials.
func (o Options) callError(op, id string, err error) error {
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("gcp kms key %q: %s: %s: %s", id, op, st.Code(), o.scrub(st.Message()))
	}
	return fmt.Errorf("gcp kms key %q: %s: %s", id, op, o.scrub(err.Error()))
}

var (
	_ keys.Recipient = (*Recipient)(nil)
	_ keys.Identity  = (*Identity)(nil)
	_ keys.Describer = (*Recipient)(nil)
	_ keys.Describer = (*Identity)(nil)
)

// Recipient wraps data keys with one Cloud KMS crypto key.
type Recipient struct {
	id string
	c  *client
}

// NewRecipient returns a recipient for a crypto key resource id,
// projects/P/locations/L/keyRings/R/cryptoKeys/K.
func NewRecipient(resourceID string, opts Options) (*Recipient, error) {
	id, err := ParseResourceID(resourceID)
	if err != nil {
		return nil, err
	}
	return &Recipient{id: id, c: clientFor(opts)}, nil
}

// RecipientFromStanza returns the recipient of an existing gcp_kms stanza.
func RecipientFromStanza(s *keys.Stanza, opts Options) (keys.Recipient, error) {
	if s.Type != keys.TypeGCPKMS {
		return nil, fmt.Errorf("not a %s stanza: %q", keys.TypeGCPKMS, s.Type)
	}
	return NewRecipient(s.Field("resource_id"), opts)
}

// ResourceID returns the crypto key's resource id.
func (r *Recipient) ResourceID() string { return r.id }

// Describe implements keys.Describer.
func (r *Recipient) Describe() string { return "gcp kms key " + r.id }

// Close closes the client the recipient shares with others made from the
// same Options; it dials again if used later.
func (r *Recipient) Close() error { return r.c.close() }

// Wrap encrypts the data key with Cloud KMS.
func (r *Recipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	kc, err := r.c.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("gcp kms key %q: %w", r.id, err)
	}
	resp, err := kc.Encrypt(ctx, &kmspb.EncryptRequest{Name: r.id, Plaintext: dataKey, PlaintextCrc32C: wrapperspb.Int64(crc(dataKey))})
	if err != nil {
		return nil, r.c.opts.callError("encrypt", r.id, err)
	}
	if len(resp.GetCiphertext()) == 0 {
		return nil, fmt.Errorf("gcp kms key %q: encrypt: empty ciphertext in the response", r.id)
	}
	// Checksums are verified when the server returns them (Cloud KMS
	// does; some compatible endpoints may not).
	if c := resp.GetCiphertextCrc32C(); c != nil && c.GetValue() != crc(resp.GetCiphertext()) {
		return nil, fmt.Errorf("gcp kms key %q: encrypt: the response was corrupted in transit (ciphertext checksum mismatch)", r.id)
	}
	return &keys.Stanza{
		Type:      keys.TypeGCPKMS,
		Fields:    map[string]string{"resource_id": r.id},
		CreatedAt: time.Now().UTC().Format(time.RFC3339),
		Enc:       base64.StdEncoding.EncodeToString(resp.GetCiphertext()),
	}, nil
}

// Identity unwraps any gcp_kms stanza the credentials may decrypt with.
type Identity struct {
	c *client
}

// NewIdentity returns an identity that asks Cloud KMS to decrypt.
func NewIdentity(opts Options) *Identity { return &Identity{c: clientFor(opts)} }

// Describe implements keys.Describer (never credential content).
func (i *Identity) Describe() string { return "gcp kms " + i.c.opts.describe() }

// StanzaType implements keys.Typed.
func (i *Identity) StanzaType() string { return keys.TypeGCPKMS }

// Close closes the client the identity shares with others made from the
// same Options; it dials again if used later.
func (i *Identity) Close() error { return i.c.close() }

// Unwrap decrypts a gcp_kms stanza with Cloud KMS. Stanzas of other types
// give keys.ErrIncorrectIdentity.
func (i *Identity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypeGCPKMS {
		return nil, keys.ErrIncorrectIdentity
	}
	id, err := ParseResourceID(s.Field("resource_id"))
	if err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Enc))
	if err != nil || len(ct) == 0 {
		return nil, fmt.Errorf("gcp kms key %q: enc is not valid base64", id)
	}
	kc, err := i.c.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("gcp kms key %q: %w", id, err)
	}
	resp, err := kc.Decrypt(ctx, &kmspb.DecryptRequest{Name: id, Ciphertext: ct, CiphertextCrc32C: wrapperspb.Int64(crc(ct))})
	if err != nil {
		return nil, i.c.opts.callError("decrypt", id, err)
	}
	pt := resp.GetPlaintext()
	if c := resp.GetPlaintextCrc32C(); c != nil && c.GetValue() != crc(pt) {
		return nil, fmt.Errorf("gcp kms key %q: decrypt: the response was corrupted in transit (plaintext checksum mismatch)", id)
	}
	if len(pt) == 0 {
		return nil, fmt.Errorf("gcp kms key %q: decrypt: empty plaintext in the response", id)
	}
	return pt, nil
}
