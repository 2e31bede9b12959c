package runner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fixture is a fake server plus a client key and a known_hosts file that trusts it.
type fixture struct {
	srv        *fakeServer
	clientKey  ed25519.PrivateKey
	keyFile    string
	knownHosts string
	target     Target
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{clientKey: priv, keyFile: filepath.Join(dir, "id"), knownHosts: filepath.Join(dir, "known_hosts")}
	pub, _ := ssh.NewPublicKey(priv.Public())
	f.srv = startFakeServer(t, newSigner(t), pub)
	writeKey(t, f.keyFile, priv, nil)
	trust(t, f.knownHosts, f.srv.addr, f.srv.hostKey.PublicKey())
	f.target = Target{Name: "fake", Host: "127.0.0.1", Port: f.srv.port, User: "tester", IdentityFiles: []string{f.keyFile}}
	return f
}

func (f *fixture) pool(o Options) *Pool {
	if o.KnownHostsFiles == nil {
		o.KnownHostsFiles = []string{f.knownHosts}
	}
	o.GlobalKnownHostsFiles = []string{}
	o.Agent = "none"
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	return NewPool(o)
}

func (f *fixture) get(t testing.TB, o Options) (*Pool, *SSH) {
	t.Helper()
	p := f.pool(o)
	t.Cleanup(func() { p.Close() })
	s, err := p.Get(context.Background(), f.target)
	if err != nil {
		t.Fatal(err)
	}
	return p, s
}

func writeKey(t testing.TB, path string, priv ed25519.PrivateKey, passphrase []byte) {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == nil {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", passphrase)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

func trust(t testing.TB, file, addr string, key ssh.PublicKey) {
	t.Helper()
	fh, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n")
}

func TestSSHExecAndReuse(t *testing.T) {
	f := newFixture(t)
	var logged []string
	var mu sync.Mutex
	p, s := f.get(t, Options{Log: func(h, c string) { mu.Lock(); logged = append(logged, h+": "+c); mu.Unlock() }})
	res, err := s.Exec(context.Background(), Cmd{Command: "cat; printf ' %s' " + Quote("a b"), Stdin: strings.NewReader("secret-stdin")})
	if err != nil || string(res.Stdout) != "secret-stdin a b" {
		t.Fatalf("got %q %v", res.Stdout, err)
	}
	_, err = s.Exec(context.Background(), Cmd{Command: "echo oops >&2; exit 7"})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 7 || ce.Stderr != "oops" || ce.Host != "fake" {
		t.Fatalf("want CommandError 7, got %v", err)
	}
	if _, err := p.Get(context.Background(), f.target); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.conns.Load(); n != 1 {
		t.Fatalf("want 1 TCP connection for 2 Gets and 2 commands, got %d", n)
	}
	for _, l := range logged {
		if strings.Contains(l, "secret-stdin") {
			t.Fatalf("stdin leaked into the log: %q", l)
		}
	}
	if len(logged) != 2 || logged[1] != "fake: echo oops >&2; exit 7" {
		t.Fatalf("log: %q", logged)
	}
}

func TestSSHUploadDownloadSFTP(t *testing.T) {
	f := newFixture(t)
	_, s := f.get(t, Options{})
	p := filepath.Join(t.TempDir(), "ruleset.nft")
	os.WriteFile(p, []byte("old"), 0o644)
	if err := s.Upload(context.Background(), p, strings.NewReader("table inet f {}\n"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	b, err := s.Download(context.Background(), p, false)
	if err != nil || string(b) != "table inet f {}\n" {
		t.Fatalf("download %q %v", b, err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
	if n := f.srv.conns.Load(); n != 1 {
		t.Fatalf("SFTP opened its own connection: %d", n)
	}
}

func TestSSHAuthFailed(t *testing.T) {
	f := newFixture(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	writeKey(t, f.keyFile, other, nil)
	_, err := f.pool(Options{}).Get(context.Background(), f.target)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("want ErrAuthFailed, got %v", err)
	}
}

func TestSSHEncryptedKeyAsksOnce(t *testing.T) {
	f := newFixture(t)
	writeKey(t, f.keyFile, f.clientKey, []byte("pw"))
	second := startFakeServer(t, newSigner(t), mustPub(f.clientKey))
	trust(t, f.knownHosts, second.addr, second.hostKey.PublicKey())
	var asked atomic.Int32
	p := f.pool(Options{Passphrase: func(string) ([]byte, error) { asked.Add(1); return []byte("pw"), nil }})
	defer p.Close()
	for _, port := range []int{f.srv.port, second.port} {
		tg := f.target
		tg.Port = port
		if _, err := p.Get(context.Background(), tg); err != nil {
			t.Fatal(err)
		}
	}
	if asked.Load() != 1 {
		t.Fatalf("passphrase asked %d times, want 1", asked.Load())
	}
}

func mustPub(k ed25519.PrivateKey) ssh.PublicKey {
	p, _ := ssh.NewPublicKey(k.Public())
	return p
}

func TestSSHHostKeyMismatchStrict(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.knownHosts, nil, 0o600)
	wrong := newSigner(t).PublicKey()
	trust(t, f.knownHosts, f.srv.addr, wrong)
	_, err := f.pool(Options{}).Get(context.Background(), f.target)
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("want ErrHostKeyMismatch, got %v", err)
	}
	for _, want := range []string{ssh.FingerprintSHA256(wrong), ssh.FingerprintSHA256(f.srv.hostKey.PublicKey()), f.srv.addr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSSHUnknownKeyAcceptNew(t *testing.T) {
	f := newFixture(t)
	os.Remove(f.knownHosts)
	_, err := f.pool(Options{}).Get(context.Background(), f.target)
	fp := ssh.FingerprintSHA256(f.srv.hostKey.PublicKey())
	if !errors.Is(err, ErrHostKeyUnknown) || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "--accept-new") {
		t.Fatalf("want ErrHostKeyUnknown naming %s and --accept-new, got %v", fp, err)
	}
	p := f.pool(Options{AcceptNew: true})
	if _, err := p.Get(context.Background(), f.target); err != nil {
		t.Fatal(err)
	}
	p.Close()
	st, err := os.Stat(f.knownHosts)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts not written 0600: %v %v", st, err)
	}
	p = f.pool(Options{}) // strict now, and the recorded key is accepted
	defer p.Close()
	if _, err := p.Get(context.Background(), f.target); err != nil {
		t.Fatalf("second run: %v", err)
	}
}

func TestSSHChangedKeyRefusedEvenWithAcceptNew(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(f.knownHosts, nil, 0o600)
	trust(t, f.knownHosts, f.srv.addr, newSigner(t).PublicKey())
	before, _ := os.ReadFile(f.knownHosts)
	_, err := f.pool(Options{AcceptNew: true}).Get(context.Background(), f.target)
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("want ErrHostKeyMismatch, got %v", err)
	}
	after, _ := os.ReadFile(f.knownHosts)
	if !bytes.Equal(before, after) {
		t.Fatal("known_hosts was modified")
	}
}

func TestSSHStalledHandshakeTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and never says a word
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	f := newFixture(t)
	f.target.Port = ln.Addr().(*net.TCPAddr).Port
	start := time.Now()
	_, err = f.pool(Options{ConnectTimeout: 300 * time.Millisecond}).Get(context.Background(), f.target)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s with a 300ms bound", d)
	}
}

func TestSSHUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	f := newFixture(t)
	f.target.Port = port
	_, err := f.pool(Options{}).Get(context.Background(), f.target)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("want ErrUnreachable, got %v", err)
	}
}

func TestSSHDroppedSessionIsDisconnected(t *testing.T) {
	f := newFixture(t)
	_, s := f.get(t, Options{})
	_, err := s.Exec(context.Background(), Cmd{Command: "drop"})
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("want ErrDisconnected, got %v", err)
	}
	if _, err := s.Exec(context.Background(), Cmd{Command: "true"}); err != nil {
		t.Fatalf("connection unusable after a dropped session: %v", err)
	}
}

func TestSSHCancelMidCommand(t *testing.T) {
	f := newFixture(t)
	_, s := f.get(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Exec(ctx, Cmd{Command: "sleep 30"})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "fake: ") {
		t.Fatalf("want wrapped context.Canceled, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	if res, err := s.Exec(context.Background(), Cmd{Command: "echo ok"}); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("connection unusable after cancel: %q %v", res.Stdout, err)
	}
}

func TestSSHOutputCap(t *testing.T) {
	f := newFixture(t)
	_, s := f.get(t, Options{MaxOutput: 1 << 20})
	res, err := s.Exec(context.Background(), Cmd{Command: "yes"}) // endless
	if !errors.Is(err, ErrOutputLimit) || len(res.Stdout) != 1<<20 {
		t.Fatalf("want ErrOutputLimit with 1 MiB kept, got %v and %d bytes", err, len(res.Stdout))
	}
}

func TestSSHConcurrentOnOneConnection(t *testing.T) {
	f := newFixture(t)
	_, s := f.get(t, Options{})
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("job %d", i)
			res, err := s.Exec(context.Background(), Cmd{Command: "cat", Stdin: strings.NewReader(want)})
			if err == nil && string(res.Stdout) != want {
				err = fmt.Errorf("got %q want %q", res.Stdout, want)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.conns.Load(); n != 1 {
		t.Fatalf("want 1 connection, got %d", n)
	}
}

var _ = io.EOF

// freezer forwards TCP to a server until frozen; then it stays silent without closing,
// the way a halted host does.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
}

func startFreezer(t *testing.T, to string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	fz := &freezer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go fz.pipe(c, s)
			go fz.pipe(s, c)
		}
	}()
	return fz
}

func (fz *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if fz.frozen.Load() {
			continue // swallow: nothing gets through any more
		}
		dst.Write(buf[:n])
	}
}

func TestSSHKeepaliveDetectsSilentHost(t *testing.T) {
	f := newFixture(t)
	fz := startFreezer(t, f.srv.addr)
	f.target.Port = fz.ln.Addr().(*net.TCPAddr).Port
	trust(t, f.knownHosts, fz.ln.Addr().String(), f.srv.hostKey.PublicKey())
	_, s := f.get(t, Options{ServerAliveInterval: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := s.Exec(context.Background(), Cmd{Command: "sleep 0.3; echo late"})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	fz.frozen.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, ErrDisconnected) {
			t.Fatalf("want ErrDisconnected, got %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("command still waiting on a silent host after 3s (keepalive 100ms)")
	}
}
