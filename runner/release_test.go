package runner

import (
	"context"
	"testing"
)

// TestPoolRelease: a released connection is closed (its runner fails), and the next Get
// dials a new one that works.
func TestPoolRelease(t *testing.T) {
	f := newRealFixture(t)
	p := f.pool(t, Options{})
	ctx := context.Background()
	s, err := p.Get(ctx, f.target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	if s.Privileged() {
		t.Fatalf("login %s with become user root: Privileged() = true", f.user)
	}
	if err := p.Release(s); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := s.Exec(ctx, Cmd{Command: "true"}); err == nil {
		t.Fatal("a released connection still runs commands")
	}
	p.mu.Lock()
	n := len(p.order)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("pool still tracks %d connections after the release", n)
	}
	s2, err := p.Get(ctx, f.target)
	if err != nil {
		t.Fatal(err)
	}
	if s2.conn == s.conn {
		t.Fatal("Get after Release returned the released connection")
	}
	res, err := s2.Exec(ctx, Cmd{Command: "echo again"})
	if err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("new connection: %q, %v", res.Stdout, err)
	}
}
