package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/haltfleet/haltfleet/internal/sshdtest"
)

// Aliases keep the runner tests short; the fixture lives in internal/sshdtest.
type sshd = sshdtest.SSHD

var (
	needSSHD  = sshdtest.Need
	run       = sshdtest.Run
	startSSHD = sshdtest.Start
	testUser  = sshdtest.User
	sudoers   = sshdtest.Sudoers
	clientKey = sshdtest.ClientKey
)

// realFixture: one sshd, one user allowed in by one key, known_hosts trusting the sshd.
type realFixture struct {
	srv        *sshd
	user       string
	key        string
	knownHosts string
	target     Target
}

func newRealFixture(t *testing.T) *realFixture {
	t.Helper()
	needSSHD(t)
	dir := t.TempDir()
	f := &realFixture{srv: startSSHD(t, ""), user: testUser(t, "hfuser"), knownHosts: filepath.Join(dir, "known_hosts")}
	f.key = clientKey(t, dir, "id_ed25519", "")
	f.srv.Authorize(t, f.user, f.key+".pub")
	os.WriteFile(f.knownHosts, []byte(f.srv.KnownHostsLine(t)), 0o600)
	f.target = Target{Name: "real", Host: "127.0.0.1", Port: f.srv.Port, User: f.user, IdentityFiles: []string{f.key}}
	return f
}

func (f *realFixture) pool(t *testing.T, o Options) *Pool {
	if o.KnownHostsFiles == nil {
		o.KnownHostsFiles = []string{f.knownHosts}
	}
	if o.Agent == "" {
		o.Agent = "none"
	}
	o.GlobalKnownHostsFiles = []string{}
	p := NewPool(o)
	t.Cleanup(func() { p.Close() })
	return p
}

func (f *realFixture) get(t *testing.T, o Options) *SSH {
	t.Helper()
	s, err := f.pool(t, o).Get(context.Background(), f.target)
	if err != nil {
		t.Fatalf("connect: %v\nsshd log:\n%s", err, f.srv.LogText())
	}
	return s
}
