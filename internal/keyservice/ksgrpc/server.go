package ksgrpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/internal/keyservice/kspb"
	"github.com/lacre/lacre/keys"
)

// Prompt asks the user to confirm each request, as sops's --prompt does:
// it writes the question to Out and reads "y" or "n" lines from In.
type Prompt struct {
	In  io.Reader
	Out io.Writer

	mu sync.Mutex
	r  *bufio.Reader
}

// confirm asks about one request; requests wait for each other's answer.
func (p *Prompt) confirm(op string, k *keys.Stanza) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.r == nil {
		p.r = bufio.NewReader(io.LimitReader(p.In, 1<<30))
	}
	for {
		fmt.Fprintf(p.Out, "\nReceived %s request using %s key %s. Respond to request? (y/n): ", op, k.Type, k.ID())
		line, err := p.r.ReadString('\n')
		switch strings.TrimSpace(line) {
		case "y":
			return nil
		case "n":
			return status.Error(codes.PermissionDenied, "Request rejected by user")
		}
		if err != nil {
			return status.Errorf(codes.PermissionDenied, "no answer to the prompt: %v", err)
		}
	}
}

// Server answers KeyService requests with a Service.
type Server struct {
	Svc keyservice.Service
	// Prompt, when set, confirms each request before it is answered.
	Prompt *Prompt
	// Log, when set, is told each request (the key, never the data).
	Log func(format string, args ...any)
}

var _ kspb.KeyServiceServer = (*Server)(nil)

func (s *Server) key(op string, k *kspb.Key) (*keys.Stanza, error) {
	if k == nil || k.GetKeyType() == nil {
		return nil, status.Error(codes.NotFound, "Must provide a key")
	}
	st := fromKey(k)
	if st == nil {
		return nil, status.Error(codes.NotFound, "Unknown key type")
	}
	if s.Log != nil {
		s.Log("%s request with %s key %q", op, st.Type, st.ID())
	}
	if s.Prompt != nil {
		if err := s.Prompt.confirm(op, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Encrypt implements kspb.KeyServiceServer.
func (s *Server) Encrypt(ctx context.Context, req *kspb.EncryptRequest) (*kspb.EncryptResponse, error) {
	k, err := s.key("encrypt", req.GetKey())
	if err != nil {
		return nil, err
	}
	ct, err := s.Svc.Encrypt(ctx, k, req.GetPlaintext())
	if err != nil {
		return nil, err
	}
	return &kspb.EncryptResponse{Ciphertext: ct}, nil
}

// Decrypt implements kspb.KeyServiceServer.
func (s *Server) Decrypt(ctx context.Context, req *kspb.DecryptRequest) (*kspb.DecryptResponse, error) {
	k, err := s.key("decrypt", req.GetKey())
	if err != nil {
		return nil, err
	}
	pt, err := s.Svc.Decrypt(ctx, k, req.GetCiphertext())
	if err != nil {
		return nil, err
	}
	return &kspb.DecryptResponse{Plaintext: pt}, nil
}

// maxMessage bounds a request: a data key or share and a wrapped key are
// well under a megabyte.
const maxMessage = 1 << 20

// Serve answers requests on lis until ctx ends, then stops the server
// (finishing the requests under way) and returns nil.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage))
	kspb.RegisterKeyServiceServer(g, s)
	stop := context.AfterFunc(ctx, g.GracefulStop)
	defer stop()
	err := g.Serve(lis)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
