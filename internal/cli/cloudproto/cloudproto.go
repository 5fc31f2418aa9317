// Package cloudproto owns both ends of the cloud-key protocol between lacre
// and its companion lacre-cluster: the Keys contract (AWS KMS, GCP KMS and
// Azure Key Vault master keys), the messages, the coprocess Client that
// lacre uses (it does not link the cloud SDKs, nor gRPC) and the server that
// "lacre-cluster __cloud-keys" runs over the in-process Keys. The same
// coprocess reaches remote sops key services (--keyservice) for lacre.
package cloudproto

import (
	"context"

	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

// Keys builds the cloud master keys: AWS KMS, GCP KMS and Azure Key
// Vault. Their SDKs are large and slow to initialize, so lacre does not link
// them: package cloudkeys implements Keys in lacre-cluster, and lacre
// reaches it through a coprocess (see Client).
type Keys interface {
	// Recipient builds the recipient of a rule key of a cloud type,
	// validating it.
	Recipient(ctx context.Context, k rules.Key) (keys.Recipient, error)
	// RecipientFromStanza rebuilds the recipient of a cloud stanza.
	RecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error)
	// Identities returns the cloud identities available to this process
	// and the problems met loading them.
	Identities() ([]keys.Identity, []error)
}

// IsCloudType reports whether stanzas of type t are built by Keys.
func IsCloudType(t string) bool {
	return t == keys.TypeKMS || t == keys.TypeGCPKMS || t == keys.TypeAzureKV
}

// cloudTypeName names a cloud key type in messages.
func cloudTypeName(t string) string {
	switch t {
	case keys.TypeKMS:
		return "aws kms"
	case keys.TypeGCPKMS:
		return "gcp kms"
	case keys.TypeAzureKV:
		return "azure key vault"
	}
	return t
}

// Dialer returns the client of the key service at a --keyservice URI.
type Dialer func(uri string) (keyservice.Service, error)

// The cloud keys protocol: lacre writes one JSON request a line on the
// companion's stdin and reads one JSON response a line from its stdout.
// Requests are serialized. Error texts cross as strings: they hold no
// secrets. Data keys cross the pipe between the two processes.
const (
	cloudProtocolVersion = 2
	// CommandName is the companion's hidden command that serves Keys.
	CommandName = "__cloud-keys"

	opHello           = "hello"            // -> Version, Identities, Problems
	opRecipient       = "recipient"        // Key -> Handle, Describe
	opStanzaRecipient = "stanza-recipient" // Stanza -> Handle, Describe
	opWrap            = "wrap"             // Handle, DataKey -> Stanza, Describe
	opUnwrap          = "unwrap"           // Stanza -> DataKey, or Incorrect
	opKSEncrypt       = "ks-encrypt"       // URI, Stanza, DataKey (plaintext) -> DataKey (ciphertext)
	opKSDecrypt       = "ks-decrypt"       // URI, Stanza, DataKey (ciphertext) -> DataKey (plaintext)
	opUpload          = "upload"           // Object, Data -> (publish to S3 or GCS)
)

type cloudRequest struct {
	Op      string       `json:"op"`
	Version int          `json:"version,omitempty"`
	Key     *rules.Key   `json:"key,omitempty"`
	Stanza  *keys.Stanza `json:"stanza,omitempty"`
	Handle  int          `json:"handle,omitempty"`
	DataKey []byte       `json:"data_key,omitempty"`
	URI     string       `json:"uri,omitempty"` // a key service's
	Object  *Object      `json:"object,omitempty"`
	Data    []byte       `json:"data,omitempty"`
}

// Object names where publish stores an encrypted file: Kind is "s3" or
// "gcs".
type Object struct {
	Kind   string `json:"kind"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// String is the object's URL as sops prints it (s3://, gcs://).
func (o Object) String() string { return o.Kind + "://" + o.Bucket + "/" + o.Key }

// Uploader stores published files in S3 or GCS (publish); package
// cloudkeys implements it in lacre-cluster, Client reaches it for lacre.
type Uploader interface {
	Upload(ctx context.Context, o Object, data []byte) error
}

type cloudResponse struct {
	Error      string          `json:"error,omitempty"`
	Incorrect  bool            `json:"incorrect_identity,omitempty"`
	Version    int             `json:"version,omitempty"`
	Identities []cloudIdentity `json:"identities,omitempty"`
	Problems   []string        `json:"problems,omitempty"`
	Handle     int             `json:"handle,omitempty"`
	Describe   string          `json:"describe,omitempty"`
	Stanza     *keys.Stanza    `json:"stanza,omitempty"`
	DataKey    []byte          `json:"data_key,omitempty"`
}

// cloudIdentity is the public description of one identity of the server.
type cloudIdentity struct {
	Type     string `json:"type"`
	Describe string `json:"describe"`
}

// cloudError is an error text received from the companion.
type cloudError string

func (e cloudError) Error() string { return string(e) }
