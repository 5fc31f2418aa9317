// Package awskms implements AWS KMS master keys with aws-sdk-go-v2: the data
// key is encrypted with kms:Encrypt under the key's ARN (region taken from
// the ARN) and the stanza's encryption context, optionally after assuming
// the stanza's role with STS, and decrypted with kms:Decrypt.
//
// The library reads no environment itself. Options.Credentials supplies
// static credentials; left nil, the SDK's default chain resolves them
// (environment, shared config and aws_profile, EKS IRSA web identity,
// instance roles), which is what a workload identity needs.
package awskms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/keys"
)

var (
	arnRE     = regexp.MustCompile(`^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$`)
	sessionRE = regexp.MustCompile("[^a-zA-Z0-9=,.@-_]+")
)

// Options configure how lacre reaches AWS.
type Options struct {
	// Credentials, when set, are used instead of the SDK's default chain.
	Credentials aws.CredentialsProvider
	// Endpoint overrides the KMS and STS endpoint (a local server in tests,
	// a VPC endpoint in production).
	Endpoint string
	// HTTPClient is the SDK's HTTP client; nil uses the SDK's.
	HTTPClient *http.Client
	// Hostname names the STS session ("sops@<hostname>", as sops does); ""
	// uses os.Hostname.
	Hostname string
}

// Key is one AWS KMS master key: the ARN of a key or alias, an optional
// role to assume, an optional shared-config profile and an encryption
// context.
type Key struct {
	ARN     string
	Role    string
	Profile string
	Context map[string]string
}

// ParseKey parses an ARN as written in .sops.yaml or on the command line:
// "arn:aws:kms:...:key/..." optionally followed by "+arn:aws:iam::...:role/...".
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	arn, role, _ := strings.Cut(s, "+")
	if !arnRE.MatchString(arn) {
		return Key{}, fmt.Errorf("aws kms: %q is not a KMS key or alias ARN", s)
	}
	return Key{ARN: arn, Role: role}, nil
}

// ParseContext parses an encryption context as sops's --encryption-context
// flag takes it: "key:value,key2:value2".
func ParseContext(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("aws kms: encryption context entry %q is not key:value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func (k Key) region() (string, error) {
	m := arnRE.FindStringSubmatch(k.ARN)
	if m == nil {
		return "", fmt.Errorf("aws kms: %q is not a KMS key or alias ARN", k.ARN)
	}
	return m[1], nil
}

func (k Key) describe() string {
	d := "aws kms key " + k.ARN
	if k.Role != "" {
		d += " (role " + k.Role + ")"
	}
	return d
}

// clients caches one KMS client per region, profile and role.
type clients struct {
	opts Options
	mu   sync.Mutex
	m    map[string]*kms.Client
}

func newClients(opts Options) *clients { return &clients{opts: opts, m: map[string]*kms.Client{}} }

func (c *clients) get(ctx context.Context, k Key) (*kms.Client, error) {
	region, err := k.region()
	if err != nil {
		return nil, err
	}
	id := region + "\x00" + k.Profile + "\x00" + k.Role
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[id]; ok {
		return cl, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx, func(lo *config.LoadOptions) error {
		lo.Region = region
		if c.opts.Credentials != nil {
			lo.Credentials = c.opts.Credentials
		}
		if k.Profile != "" && c.opts.Credentials == nil {
			lo.SharedConfigProfile = k.Profile
		}
		if c.opts.HTTPClient != nil {
			lo.HTTPClient = c.opts.HTTPClient
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aws kms: loading the AWS configuration for %q: %v", k.ARN, err)
	}
	if k.Role != "" {
		name := "sops@" + sessionRE.ReplaceAllString(c.hostname(), "")
		if len(name) > 64 {
			name = name[:64]
		}
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if c.opts.Endpoint != "" {
				o.BaseEndpoint = aws.String(c.opts.Endpoint)
			}
		})
		out, err := stsClient.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(k.Role), RoleSessionName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("aws kms: assuming role %q for %q: %s", k.Role, k.ARN, apiMessage(err))
		}
		if out.Credentials == nil {
			return nil, fmt.Errorf("aws kms: assuming role %q returned no credentials", k.Role)
		}
		cr := out.Credentials
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)))
	}
	cl := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if c.opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.opts.Endpoint)
		}
	})
	c.m[id] = cl
	return cl, nil
}

func (c *clients) hostname() string {
	if c.opts.Hostname != "" {
		return c.opts.Hostname
	}
	h, _ := os.Hostname()
	return h
}

// apiMessage reduces an SDK error to its service error code and message:
// the SDK's own text carries request ids and retry chatter, never secrets,
// but is long.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg := ae.ErrorCode()
		if m := ae.ErrorMessage(); m != "" {
			msg += ": " + m
		}
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return msg
	}
	return err.Error()
}

// Recipient wraps data keys with one KMS key.
type Recipient struct {
	key Key
	c   *clients
}

var (
	_ keys.Recipient = (*Recipient)(nil)
	_ keys.Identity  = (*Identity)(nil)
	_ keys.Typed     = (*Identity)(nil)
)

// NewRecipient returns a recipient for key.
func NewRecipient(key Key, opts Options) (*Recipient, error) {
	if _, err := key.region(); err != nil {
		return nil, err
	}
	return &Recipient{key: key, c: newClients(opts)}, nil
}

// RecipientFromStanza returns the recipient of an existing stanza.
func RecipientFromStanza(s *keys.Stanza, opts Options) (keys.Recipient, error) {
	if s.Type != keys.TypeKMS {
		return nil, errors.New("not an aws kms stanza")
	}
	return NewRecipient(stanzaKey(s), opts)
}

func stanzaKey(s *keys.Stanza) Key {
	return Key{ARN: s.Field("arn"), Role: s.Field("role"), Profile: s.Field("aws_profile"), Context: maps.Clone(s.Context)}
}

// Describe implements keys.Describer.
func (r *Recipient) Describe() string { return r.key.describe() }

// Wrap encrypts the data key with KMS.
func (r *Recipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	cl, err := r.c.get(ctx, r.key)
	if err != nil {
		return nil, err
	}
	out, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(r.key.ARN), Plaintext: dataKey, EncryptionContext: r.key.Context})
	if err != nil {
		return nil, fmt.Errorf("aws kms: encrypting with %q: %s", r.key.ARN, apiMessage(err))
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("aws kms: encrypting with %q: empty ciphertext", r.key.ARN)
	}
	fields := map[string]string{"arn": r.key.ARN}
	if r.key.Role != "" {
		fields["role"] = r.key.Role
	}
	if r.key.Profile != "" {
		fields["aws_profile"] = r.key.Profile
	}
	var ctxMap map[string]string
	if len(r.key.Context) > 0 {
		ctxMap = maps.Clone(r.key.Context)
	}
	return &keys.Stanza{Type: keys.TypeKMS, Fields: fields, Context: ctxMap,
		CreatedAt: time.Now().UTC().Format(time.RFC3339), Enc: base64.StdEncoding.EncodeToString(out.CiphertextBlob)}, nil
}

// Identity unwraps any KMS stanza the credentials may decrypt.
type Identity struct {
	c    *clients
	desc string
}

// NewIdentity returns an identity that asks KMS to decrypt with the
// credentials of opts (the default chain when opts.Credentials is nil).
func NewIdentity(opts Options) *Identity {
	d := "aws kms credentials (default chain)"
	if opts.Credentials != nil {
		d = "aws kms credentials (static)"
	}
	return &Identity{c: newClients(opts), desc: d}
}

// Describe implements keys.Describer (never a secret).
func (i *Identity) Describe() string { return i.desc }

// StanzaType implements keys.Typed.
func (i *Identity) StanzaType() string { return keys.TypeKMS }

// Unwrap decrypts a KMS stanza.
func (i *Identity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s.Type != keys.TypeKMS {
		return nil, keys.ErrIncorrectIdentity
	}
	k := stanzaKey(s)
	blob, err := base64.StdEncoding.DecodeString(s.Enc)
	if err != nil || len(blob) == 0 {
		return nil, fmt.Errorf("aws kms: the wrapped key for %q is not valid base64", k.ARN)
	}
	cl, err := i.c.get(ctx, k)
	if err != nil {
		return nil, err
	}
	out, err := cl.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(k.ARN), CiphertextBlob: blob, EncryptionContext: k.Context})
	if err != nil {
		return nil, fmt.Errorf("aws kms: decrypting with %q: %s", k.ARN, apiMessage(err))
	}
	if len(out.Plaintext) == 0 {
		return nil, fmt.Errorf("aws kms: decrypting with %q: empty plaintext", k.ARN)
	}
	return out.Plaintext, nil
}

// ParseSecretCredentials reads static credentials as Flux's `sops.aws-kms`
// Secret entry holds them (YAML or JSON with aws_access_key_id,
// aws_secret_access_key and optionally aws_session_token). Errors never
// echo the data.
func ParseSecretCredentials(data []byte) (aws.CredentialsProvider, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, errors.New("aws kms: the credentials are not a YAML or JSON map")
	}
	get := func(names ...string) string {
		for _, n := range names {
			if v, ok := raw[n].(string); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	id := get("aws_access_key_id", "AWS_ACCESS_KEY_ID")
	secret := get("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY")
	token := get("aws_session_token", "AWS_SESSION_TOKEN")
	if id == "" || secret == "" {
		known := slices.Sorted(maps.Keys(raw))
		return nil, fmt.Errorf("aws kms: the credentials need aws_access_key_id and aws_secret_access_key (found keys %q)", known)
	}
	return credentials.NewStaticCredentialsProvider(id, secret, token), nil
}
