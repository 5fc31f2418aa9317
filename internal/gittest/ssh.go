package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHServer serves the server's repositories over SSH with git's own
// git-upload-pack, accepting one client key.
type SSHServer struct {
	Addr       string // host:port
	KnownHosts []byte // a known_hosts line for the server
	ClientKey  []byte // PEM private key the server accepts
}

// URL returns an ssh:// clone URL for a repository.
func (s *SSHServer) URL(r *Repo) string {
	return fmt.Sprintf("ssh://git@%s/%s.git", s.Addr, r.Name)
}

// ServeSSH starts an SSH server for the server's repositories.
func (s *Server) ServeSSH(t testing.TB) *SSHServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	authorized, _ := ssh.NewPublicKey(clientPub)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(authorized.Marshal()) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.handleSSH(conn, cfg)
		}
	}()
	blk, _ := ssh.MarshalPrivateKey(clientPriv, "")
	addr := ln.Addr().String()
	host, port, _ := net.SplitHostPort(addr)
	return &SSHServer{
		Addr:       addr,
		KnownHosts: []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))),
		ClientKey:  pem.EncodeToMemory(blk),
	}
}

func (s *Server) handleSSH(conn net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		conn.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range chReqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					req.Reply(req.Type == "env", nil)
					continue
				}
				n := binary.BigEndian.Uint32(req.Payload)
				command := string(req.Payload[4 : 4+n])
				verb, arg, _ := strings.Cut(command, " ")
				if verb != "git-upload-pack" && verb != "git-receive-pack" {
					req.Reply(false, nil)
					continue
				}
				req.Reply(true, nil)
				repo := filepath.Join(s.Root, filepath.Base(strings.Trim(arg, "'\"")))
				cmd := exec.Command(verb, repo)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				status := 0
				if err := cmd.Run(); err != nil {
					status = 1
				}
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(status)))
				io.Copy(io.Discard, ch)
				return
			}
		}()
	}
}
