package cloudproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
)

// Command is the companion's hidden command that serves ck, and the key
// services dial reaches, on stdin and stdout, for lacre.
func Command(stdin io.Reader, stdout io.Writer, ck Keys, dial Dialer, up Uploader) *cobra.Command {
	return &cobra.Command{
		Use:    CommandName,
		Short:  "Serve cloud master key operations to lacre on stdin and stdout",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveCloudKeys(cmd.Context(), stdin, stdout, &cloudServer{ck: ck, dial: dial, up: up})
		},
	}
}

// serveCloudKeys answers requests until r ends.
func serveCloudKeys(ctx context.Context, r io.Reader, w io.Writer, s *cloudServer) error {
	s.recipients = map[int]keys.Recipient{}
	s.services = map[string]keyservice.Service{}
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
	ck         Keys
	loaded     bool
	ids        []keys.Identity
	problems   []error
	recipients map[int]keys.Recipient
	dial       Dialer
	up         Uploader
	services   map[string]keyservice.Service // by URI
}

// keyService answers a ks-encrypt or ks-decrypt request.
func (s *cloudServer) keyService(ctx context.Context, req *cloudRequest) *cloudResponse {
	if req.Stanza == nil {
		return &cloudResponse{Error: "no key in the request"}
	}
	svc, ok := s.services[req.URI]
	if !ok {
		if s.dial == nil {
			return &cloudResponse{Error: "this lacre-cluster has no key service client"}
		}
		var err error
		if svc, err = s.dial(req.URI); err != nil {
			return &cloudResponse{Error: err.Error()}
		}
		s.services[req.URI] = svc
	}
	var out []byte
	var err error
	if req.Op == opKSEncrypt {
		out, err = svc.Encrypt(ctx, req.Stanza, req.DataKey)
	} else {
		out, err = svc.Decrypt(ctx, req.Stanza, req.DataKey)
	}
	if err != nil {
		return &cloudResponse{Error: err.Error()}
	}
	return &cloudResponse{DataKey: out}
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
	case opKSEncrypt, opKSDecrypt:
		return s.keyService(ctx, req)
	case opUpload:
		if req.Object == nil || s.up == nil {
			return fail(errors.New("this lacre-cluster does not publish to S3 or GCS"))
		}
		if err := s.up.Upload(ctx, *req.Object, req.Data); err != nil {
			return fail(err)
		}
		return &cloudResponse{}
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
