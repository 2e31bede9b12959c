package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHosts checks host keys against known_hosts files. New keys (AcceptNew only) go
// to files[0]; global files are read, never written.
type knownHosts struct {
	files     []string
	global    []string
	acceptNew bool
	mu        *sync.Mutex // one writer per process; flock covers other processes
}

// db reads the files afresh, so a key another goroutine just added is seen.
func (k *knownHosts) db() (ssh.HostKeyCallback, error) {
	var existing []string
	for _, f := range append(slices.Clone(k.files), k.global...) {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if len(existing) == 0 {
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	return knownhosts.New(existing...)
}

// algorithms orders host key algorithms so the server shows a key type we already know
// (as OpenSSH does); otherwise a host with several keys could look changed.
func (k *knownHosts) algorithms(hostport string) []string {
	all := ssh.SupportedAlgorithms().HostKeys
	db, err := k.db()
	if err != nil {
		return all
	}
	var ke *knownhosts.KeyError
	if !errors.As(db(hostport, &net.TCPAddr{}, probeKey{}), &ke) {
		return all
	}
	var first []string
	for _, w := range ke.Want {
		for _, a := range keyAlgorithms(w.Key.Type()) {
			if !slices.Contains(first, a) {
				first = append(first, a)
			}
		}
	}
	for _, a := range all {
		if !slices.Contains(first, a) {
			first = append(first, a)
		}
	}
	return first
}

func keyAlgorithms(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// probeKey matches no known key, so the check lists every key known for the host.
type probeKey struct{}

func (probeKey) Type() string                        { return "haltfleet-probe" }
func (probeKey) Marshal() []byte                     { return []byte("haltfleet-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

// check is the ssh.HostKeyCallback: known and equal passes, different is refused
// always, unknown is added only with acceptNew.
func (k *knownHosts) check(ctx context.Context, hostport string, key ssh.PublicKey) error {
	db, err := k.db()
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	err = classifyHostKey(hostport, key, db(hostport, &net.TCPAddr{}, key))
	if !errors.Is(err, ErrHostKeyUnknown) || !k.acceptNew {
		return err
	}
	return k.add(ctx, hostport, key)
}

func classifyHostKey(hostport string, key ssh.PublicKey, err error) error {
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return withDetail(ErrHostKeyMismatch, "%s presents %s %s, revoked at %s", hostport,
			key.Type(), ssh.FingerprintSHA256(key), re.Revoked.String())
	case errors.As(err, &ke) && len(ke.Want) > 0:
		var want []string
		for _, w := range ke.Want {
			want = append(want, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
		}
		return withDetail(ErrHostKeyMismatch, "%s presents %s %s but known_hosts has %s; if the host was reinstalled, remove the old key with ssh-keygen -R",
			hostport, key.Type(), ssh.FingerprintSHA256(key), strings.Join(want, ", "))
	case errors.As(err, &ke):
		return withDetail(ErrHostKeyUnknown, "%s presents %s %s; verify it and rerun with --accept-new",
			hostport, key.Type(), ssh.FingerprintSHA256(key))
	}
	return fmt.Errorf("known_hosts: %w", err)
}

// add appends the key under a file lock, re-checking first: another process may have
// added this host meanwhile, with the same key or a different one.
func (k *knownHosts) add(ctx context.Context, hostport string, key ssh.PublicKey) error {
	if len(k.files) == 0 {
		return withDetail(ErrHostKeyUnknown, "%s: no known_hosts file to record %s in", hostport, ssh.FingerprintSHA256(key))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	path := k.files[0]
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	lock := flock.New(path+".lock", flock.SetPermissions(0o600))
	if ok, err := lock.TryLockContext(ctx, 50*time.Millisecond); !ok || err != nil {
		return fmt.Errorf("known_hosts: lock %s: %w", path, err)
	}
	defer lock.Unlock()
	db, err := k.db()
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	if err := classifyHostKey(hostport, key, db(hostport, &net.TCPAddr{}, key)); !errors.Is(err, ErrHostKeyUnknown) {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("known_hosts: %w", err)
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	line := knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(hostport))}, key)
	return writeAtomic(path, append(old, line+"\n"...), 0o600)
}

// writeAtomic replaces path with data via a synced temp file and rename, so a crash
// leaves the old file or the new one, never half of one.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
