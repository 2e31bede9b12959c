package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Eight writers that share nothing but the file (as separate haltfleet processes would)
// record 200 new host keys at once while a reader keeps reading known_hosts: every read
// is whole lines that parse, nothing is lost, the user's own lines stay, the file is 0600
// and no temp file is left behind.
func TestKnownHostsConcurrentAddsAreAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "known_hosts")
	mine := "example.org " + string(ssh.MarshalAuthorizedKey(newSigner(t).PublicKey()))
	if err := os.WriteFile(path, []byte("# my own comment\n"+mine), 0o644); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	stop := make(chan struct{})
	var reads, bad int
	var rmu sync.Mutex
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			rmu.Lock()
			reads++
			if err != nil || len(b) == 0 || b[len(b)-1] != '\n' || !parses(b) {
				bad++
			}
			rmu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := &knownHosts{files: []string{path}, acceptNew: true, mu: &sync.Mutex{}}
			for i := range each {
				hp := fmt.Sprintf("[10.9.%d.%d]:22", w, i)
				if err := k.add(context.Background(), hp, newSigner(t).PublicKey()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	close(errs)
	for err := range errs {
		t.Errorf("add: %v", err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Count(string(b), "\n")
	if lines != 2+writers*each || !bytes.HasPrefix(b, []byte("# my own comment\n"+mine)) || !parses(b) {
		t.Errorf("known_hosts has %d lines (want %d) or lost the user's lines", lines, 2+writers*each)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v after an addition, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "known_hosts" && e.Name() != "known_hosts.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	t.Logf("%d reads during the additions, %d torn", reads, bad)
	if bad > 0 {
		t.Errorf("%d of %d reads saw a partial or unparsable known_hosts", bad, reads)
	}
}

// parses reports whether every non-comment line of a known_hosts file parses.
func parses(b []byte) bool {
	for rest := b; len(bytes.TrimSpace(rest)) > 0; {
		var err error
		_, _, _, _, rest, err = ssh.ParseKnownHosts(rest)
		if err != nil {
			return false
		}
	}
	return true
}
