package ksgrpc

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/lacre/lacre/internal/keyservice"
	"github.com/lacre/lacre/internal/keyservice/kspb"
	"github.com/lacre/lacre/keys"
)

// Client is a remote key service: a Service over one gRPC connection,
// made on first use (as sops does, without TLS).
type Client struct {
	conn *grpc.ClientConn
	ks   *kspb.KeyServiceClient
}

var _ keyservice.Service = (*Client)(nil)

// Dial returns the client of the key service at uri (sops's
// "protocol://address"). It does not connect yet.
func Dial(uri string) (*Client, error) {
	network, address, err := keyservice.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, address)
	}
	conn, err := grpc.NewClient("passthrough:///"+address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, ks: kspb.NewKeyServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Encrypt implements keyservice.Service.
func (c *Client) Encrypt(ctx context.Context, key *keys.Stanza, plaintext []byte) ([]byte, error) {
	k, err := toKey(key)
	if err != nil {
		return nil, err
	}
	resp, err := c.ks.Encrypt(ctx, &kspb.EncryptRequest{Key: k, Plaintext: plaintext})
	if err != nil {
		return nil, plain(err)
	}
	return resp.GetCiphertext(), nil
}

// Decrypt implements keyservice.Service.
func (c *Client) Decrypt(ctx context.Context, key *keys.Stanza, ciphertext []byte) ([]byte, error) {
	k, err := toKey(key)
	if err != nil {
		return nil, err
	}
	resp, err := c.ks.Decrypt(ctx, &kspb.DecryptRequest{Key: k, Ciphertext: ciphertext})
	if err != nil {
		return nil, plain(err)
	}
	return resp.GetPlaintext(), nil
}

// plain turns a gRPC status into "message (code)".
func plain(err error) error {
	if st, ok := status.FromError(err); ok {
		return &remoteError{code: st.Code().String(), msg: st.Message()}
	}
	return err
}

type remoteError struct{ code, msg string }

func (e *remoteError) Error() string { return e.msg + " (" + e.code + ")" }
