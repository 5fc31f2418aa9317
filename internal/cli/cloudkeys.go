package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

// CloudKeys builds the cloud master keys: AWS KMS, GCP KMS and Azure Key
// Vault. Their SDKs are large and slow to initialize, so lacre does not link
// them: package cloudkeys implements CloudKeys in lacre-cluster, and lacre
// reaches it through a coprocess (see cloudProxy).
type CloudKeys interface {
	// Recipient builds the recipient of a rule key of a cloud type,
	// validating it.
	Recipient(ctx context.Context, k rules.Key) (keys.Recipient, error)
	// RecipientFromStanza rebuilds the recipient of a cloud stanza.
	RecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error)
	// Identities returns the cloud identities available to this process
	// and the problems met loading them.
	Identities() ([]keys.Identity, []error)
}

// isCloudType reports whether stanzas of type t are built by CloudKeys.
func isCloudType(t string) bool {
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

// The cloud keys protocol: lacre writes one JSON request a line on the
// companion's stdin and reads one JSON response a line from its stdout.
// Requests are serialized. Error texts cross as strings: they hold no
// secrets. Data keys cross the pipe between the two processes.
const (
	cloudProtocolVersion = 1
	cloudKeysCommand     = "__cloud-keys"

	opHello           = "hello"            // -> Version, Identities, Problems
	opRecipient       = "recipient"        // Key -> Handle, Describe
	opStanzaRecipient = "stanza-recipient" // Stanza -> Handle, Describe
	opWrap            = "wrap"             // Handle, DataKey -> Stanza, Describe
	opUnwrap          = "unwrap"           // Stanza -> DataKey, or Incorrect
)

type cloudRequest struct {
	Op      string       `json:"op"`
	Version int          `json:"version,omitempty"`
	Key     *rules.Key   `json:"key,omitempty"`
	Stanza  *keys.Stanza `json:"stanza,omitempty"`
	Handle  int          `json:"handle,omitempty"`
	DataKey []byte       `json:"data_key,omitempty"`
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

// cloudKeysCommand serves a.CloudKeys on stdin and stdout, for lacre.
func (a *App) cloudKeysCommand() *cobra.Command {
	return &cobra.Command{
		Use:    cloudKeysCommand,
		Short:  "Serve cloud master key operations to lacre on stdin and stdout",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveCloudKeys(cmd.Context(), a.Stdin, a.Stdout, a.CloudKeys)
		},
	}
}

// serveCloudKeys answers requests until r ends.
func serveCloudKeys(ctx context.Context, r io.Reader, w io.Writer, ck CloudKeys) error {
	s := &cloudServer{ck: ck, recipients: map[int]keys.Recipient{}}
	dec, enc := json.NewDecoder(r), json.NewEncoder(w)
	for {
		var req cloudRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("cloud keys: reading a request: %v", err)
		}
		resp := s.handle(ctx, &req)
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("cloud keys: writing a response: %v", err)
		}
	}
}

type cloudServer struct {
	ck         CloudKeys
	loaded     bool
	ids        []keys.Identity
	problems   []error
	recipients map[int]keys.Recipient
}

func (s *cloudServer) identities() []keys.Identity {
	if !s.loaded {
		s.ids, s.problems = s.ck.Identities()
		s.loaded = true
	}
	return s.ids
}

func identityType(id keys.Identity) string {
	if t, ok := id.(keys.Typed); ok {
		return t.StanzaType()
	}
	return ""
}

func (s *cloudServer) addRecipient(r keys.Recipient) *cloudResponse {
	h := len(s.recipients) + 1
	s.recipients[h] = r
	return &cloudResponse{Handle: h, Describe: keys.Describe(r)}
}

func (s *cloudServer) handle(ctx context.Context, req *cloudRequest) *cloudResponse {
	fail := func(err error) *cloudResponse { return &cloudResponse{Error: err.Error()} }
	switch req.Op {
	case opHello:
		resp := &cloudResponse{Version: cloudProtocolVersion}
		for _, id := range s.identities() {
			resp.Identities = append(resp.Identities, cloudIdentity{Type: identityType(id), Describe: keys.Describe(id)})
		}
		for _, p := range s.problems {
			resp.Problems = append(resp.Problems, p.Error())
		}
		return resp
	case opRecipient:
		if req.Key == nil {
			return fail(errors.New("no key in the request"))
		}
		r, err := s.ck.Recipient(ctx, *req.Key)
		if err != nil {
			return fail(err)
		}
		return s.addRecipient(r)
	case opStanzaRecipient:
		if req.Stanza == nil {
			return fail(errors.New("no stanza in the request"))
		}
		r, err := s.ck.RecipientFromStanza(ctx, req.Stanza)
		if err != nil {
			return fail(err)
		}
		return s.addRecipient(r)
	case opWrap:
		r, ok := s.recipients[req.Handle]
		if !ok {
			return fail(fmt.Errorf("no recipient %d", req.Handle))
		}
		st, err := r.Wrap(ctx, req.DataKey)
		if err != nil {
			return fail(err)
		}
		return &cloudResponse{Stanza: st, Describe: keys.Describe(r)}
	case opUnwrap:
		if req.Stanza == nil {
			return fail(errors.New("no stanza in the request"))
		}
		// As keys.UnwrapGroup does, over the identities of the type.
		// Several identities of the type (none today) are told apart by
		// their descriptions, as the proxy describes itself as all of them.
		var ofType []keys.Identity
		for _, id := range s.identities() {
			if t := identityType(id); t == "" || t == req.Stanza.Type {
				ofType = append(ofType, id)
			}
		}
		var errs []error
		for _, id := range ofType {
			k, err := id.Unwrap(ctx, req.Stanza)
			if err == nil {
				return &cloudResponse{DataKey: k}
			}
			if !errors.Is(err, keys.ErrIncorrectIdentity) {
				if len(ofType) > 1 {
					err = fmt.Errorf("%s: %w", keys.Describe(id), err)
				}
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			return &cloudResponse{Incorrect: true}
		}
		return fail(errors.Join(errs...))
	}
	return fail(fmt.Errorf("unknown operation %q", req.Op))
}

// cloudError is an error text received from the companion.
type cloudError string

func (e cloudError) Error() string { return string(e) }

// joinDescribe joins the descriptions of the server's identities of one
// type.
func joinDescribe(ids []cloudIdentity, typ string) string {
	var d []string
	for _, id := range ids {
		if id.Type == typ {
			d = append(d, id.Describe)
		}
	}
	return strings.Join(d, "; ")
}
