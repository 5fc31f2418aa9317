package cloudproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/keys"
	"github.com/lacre/lacre/rules"
)

// Companion says how Client finds and names lacre's companion executable.
type Companion struct {
	Name    string // the executable, for messages
	Install string // how to install it, for messages
	// Find returns the companion's path; when it is not found, "" and
	// where it was looked for.
	Find func() (path, where string)
	// Stderr receives the companion's stderr.
	Stderr io.Writer
}

// Client implements Keys for lacre, which does not link the cloud SDKs:
// it runs "lacre-cluster __cloud-keys" on first use of a cloud key (a
// recipient built, a cloud stanza unwrapped) and keeps it until Close, one
// request at a time. The companion inherits lacre's environment and reads
// the cloud settings itself.
type Client struct {
	c Companion

	mu       sync.Mutex
	started  bool
	startErr error  // why the companion could not be started
	missing  string // where it was looked for, when it was not found
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	enc      *json.Encoder
	dec      *json.Decoder
	dead     error // set once the companion stops answering
	hello    cloudResponse
}

var (
	_ Keys           = (*Client)(nil)
	_ keys.Typed     = (*proxyIdentity)(nil)
	_ keys.Describer = (*proxyIdentity)(nil)
	_ keys.Describer = (*proxyRecipient)(nil)
)

// NewClient returns a Client that starts the companion c on first use.
func NewClient(c Companion) *Client { return &Client{c: c} }

// start starts the companion once; typ is the key type that needs it
// (or "--keyservice URI"), for the error message.
func (p *Client) start(ctx context.Context, typ string) error {
	if !p.started {
		p.started = true
		p.startErr = p.doStart(ctx)
	}
	if p.missing != "" {
		what := cloudTypeName(typ) + " keys need"
		if strings.Contains(typ, " ") {
			what = typ + " needs"
		}
		return fmt.Errorf("%s %s, which was not found %s (install: %s)", what, p.c.Name, p.missing, p.c.Install)
	}
	return p.startErr
}

func (p *Client) doStart(ctx context.Context) error {
	path, where := p.c.Find()
	if path == "" {
		p.missing = where
		return nil
	}
	cmd := exec.Command(path, CommandName)
	cmd.Stderr = p.c.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %v", path, err)
	}
	p.cmd, p.stdin, p.enc, p.dec = cmd, in, json.NewEncoder(in), json.NewDecoder(out)
	resp, err := p.roundTrip(ctx, &cloudRequest{Op: opHello, Version: cloudProtocolVersion})
	if err != nil {
		return err
	}
	if resp.Version != cloudProtocolVersion {
		p.stop()
		return fmt.Errorf("%s at %s speaks version %d of the cloud keys protocol, lacre version %d: install the lacre and %s of the same release", p.c.Name, path, resp.Version, cloudProtocolVersion, p.c.Name)
	}
	p.hello = *resp
	return nil
}

// request starts the companion if needed and sends it req.
func (p *Client) request(ctx context.Context, typ string, req *cloudRequest) (*cloudResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.start(ctx, typ); err != nil {
		return nil, err
	}
	resp, err := p.roundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Error != "" {
		return nil, cloudError(resp.Error)
	}
	return resp, nil
}

// roundTrip writes req and reads the response; p.mu is held.
func (p *Client) roundTrip(ctx context.Context, req *cloudRequest) (*cloudResponse, error) {
	if p.dead != nil {
		return nil, p.dead
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A cancelled run stops the companion mid-request.
	stop := context.AfterFunc(ctx, func() { p.cmd.Process.Kill() })
	defer stop()
	var resp cloudResponse
	err := p.enc.Encode(req)
	if err == nil {
		err = p.dec.Decode(&resp)
	}
	if err != nil {
		how := p.stop()
		if ctx.Err() != nil {
			p.dead = fmt.Errorf("%s (cloud keys) was stopped: %w", p.c.Name, ctx.Err())
		} else {
			p.dead = fmt.Errorf("%s (cloud keys) stopped answering: %s", p.c.Name, how)
		}
		return nil, p.dead
	}
	return &resp, nil
}

// stop closes the companion's stdin and waits for it, and returns how it
// ended.
func (p *Client) stop() string {
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return "it exited"
	}
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		return err.Error()
	}
	return "it exited"
}

// Close ends the companion, if it was started.
func (p *Client) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return nil
	}
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil && p.dead == nil {
		return fmt.Errorf("%s (cloud keys): %v", p.c.Name, err)
	}
	return nil
}

// Recipient implements Keys: the companion validates the key.
func (p *Client) Recipient(ctx context.Context, k rules.Key) (keys.Recipient, error) {
	resp, err := p.request(ctx, k.Type, &cloudRequest{Op: opRecipient, Key: &k})
	if err != nil {
		return nil, err
	}
	return &proxyRecipient{p: p, typ: k.Type, handle: resp.Handle, desc: resp.Describe}, nil
}

// RecipientFromStanza implements Keys.
func (p *Client) RecipientFromStanza(ctx context.Context, s *keys.Stanza) (keys.Recipient, error) {
	resp, err := p.request(ctx, s.Type, &cloudRequest{Op: opStanzaRecipient, Stanza: s})
	if err != nil {
		return nil, err
	}
	return &proxyRecipient{p: p, typ: s.Type, handle: resp.Handle, desc: resp.Describe}, nil
}

// Identities implements Keys without starting the companion: one
// identity per cloud key type, which starts it when asked about a stanza
// of its type.
func (p *Client) Identities() ([]keys.Identity, []error) {
	return []keys.Identity{
		&proxyIdentity{p: p, typ: keys.TypeKMS},
		&proxyIdentity{p: p, typ: keys.TypeGCPKMS},
		&proxyIdentity{p: p, typ: keys.TypeAzureKV},
	}, nil
}

// Problems returns the problems the companion met loading its
// identities, if it was started.
func (p *Client) Problems() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []error
	for _, s := range p.hello.Problems {
		out = append(out, cloudError(s))
	}
	return out
}

type proxyRecipient struct {
	p      *Client
	typ    string
	handle int

	mu   sync.Mutex
	desc string
}

func (r *proxyRecipient) Describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.desc
}

func (r *proxyRecipient) Wrap(ctx context.Context, dataKey []byte) (*keys.Stanza, error) {
	resp, err := r.p.request(ctx, r.typ, &cloudRequest{Op: opWrap, Handle: r.handle, DataKey: dataKey})
	if err != nil {
		return nil, err
	}
	if resp.Stanza == nil {
		return nil, fmt.Errorf("%s (cloud keys) returned no stanza", r.p.c.Name)
	}
	r.mu.Lock()
	r.desc = resp.Describe
	r.mu.Unlock()
	return resp.Stanza, nil
}

type proxyIdentity struct {
	p   *Client
	typ string
}

func (i *proxyIdentity) StanzaType() string { return i.typ }

// Describe describes the companion's identities of the type; it starts
// the companion, as it is asked just before Unwrap.
func (i *proxyIdentity) Describe() string {
	i.p.mu.Lock()
	defer i.p.mu.Unlock()
	if i.p.start(context.Background(), i.typ) != nil {
		return cloudTypeName(i.typ) + " via " + i.p.c.Name
	}
	if d := joinDescribe(i.p.hello.Identities, i.typ); d != "" {
		return d
	}
	return cloudTypeName(i.typ) + " (no identity in " + i.p.c.Name + ")"
}

func (i *proxyIdentity) Unwrap(ctx context.Context, s *keys.Stanza) ([]byte, error) {
	if s == nil || s.Type != i.typ {
		return nil, keys.ErrIncorrectIdentity
	}
	resp, err := i.p.request(ctx, i.typ, &cloudRequest{Op: opUnwrap, Stanza: s})
	if err != nil {
		return nil, err
	}
	if resp.Incorrect {
		return nil, keys.ErrIncorrectIdentity
	}
	if len(resp.DataKey) == 0 {
		return nil, errors.New(i.p.c.Name + " (cloud keys) returned no data key")
	}
	return resp.DataKey, nil
}

// KeyService returns the key service at uri (--keyservice), reached
// through the companion, which speaks gRPC.
func (p *Client) KeyService(uri string) keyservice.Service { return &proxyService{p: p, uri: uri} }

type proxyService struct {
	p   *Client
	uri string
}

func (s *proxyService) call(ctx context.Context, op string, key *keys.Stanza, data []byte) ([]byte, error) {
	resp, err := s.p.request(ctx, "--keyservice "+s.uri, &cloudRequest{Op: op, URI: s.uri, Stanza: key, DataKey: data})
	if err != nil {
		return nil, err
	}
	if len(resp.DataKey) == 0 {
		return nil, errors.New(s.p.c.Name + " (key service) returned nothing")
	}
	return resp.DataKey, nil
}

func (s *proxyService) Encrypt(ctx context.Context, key *keys.Stanza, plaintext []byte) ([]byte, error) {
	return s.call(ctx, opKSEncrypt, key, plaintext)
}

func (s *proxyService) Decrypt(ctx context.Context, key *keys.Stanza, ciphertext []byte) ([]byte, error) {
	return s.call(ctx, opKSDecrypt, key, ciphertext)
}

// Upload implements Uploader through the companion.
func (p *Client) Upload(ctx context.Context, o Object, data []byte) error {
	_, err := p.request(ctx, "publishing to "+o.Kind, &cloudRequest{Op: opUpload, Object: &o, Data: data})
	return err
}
