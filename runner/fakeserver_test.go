package runner

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// fakeServer is an in-process SSH server on 127.0.0.1:0 for unit tests: it runs exec
// requests with sh -c, serves SFTP, and misbehaves on request ("drop" closes the
// channel without an exit status).
type fakeServer struct {
	addr    string
	port    int
	hostKey ssh.Signer
	conns   atomic.Int32 // TCP connections accepted
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startFakeServer(t testing.TB, hostKey ssh.Signer, authorized ssh.PublicKey) *fakeServer {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, io.EOF
		},
	}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &fakeServer{addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, hostKey: hostKey}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			t.Cleanup(func() { nc.Close() })
			go s.serve(nc, cfg)
		}
	}()
	return s
}

func (s *fakeServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		nc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

func (s *fakeServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	var proc *exec.Cmd
	for req := range reqs {
		switch req.Type {
		case "subsystem":
			req.Reply(true, nil)
			srv, err := sftp.NewServer(ch)
			if err == nil {
				go func() { srv.Serve(); ch.Close() }()
			}
		case "exec":
			req.Reply(true, nil)
			command := string(req.Payload[4:])
			if command == "drop" { // what a halting host looks like
				ch.Close()
				return
			}
			proc = exec.Command("sh", "-c", command)
			proc.Stdout, proc.Stderr = ch, ch.Stderr()
			proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			in, _ := proc.StdinPipe()
			if err := proc.Start(); err != nil {
				ch.Close()
				return
			}
			go func() { io.Copy(in, ch); in.Close() }()
			go func(p *exec.Cmd) {
				p.Wait()
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, uint32(p.ProcessState.ExitCode()))
				ch.SendRequest("exit-status", false, status)
				ch.Close()
			}(proc)
		case "signal":
			if proc != nil && proc.Process != nil {
				syscall.Kill(-proc.Process.Pid, syscall.SIGTERM)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}
