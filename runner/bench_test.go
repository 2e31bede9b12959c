package runner

import (
	"context"
	"testing"
)

// BenchmarkExecReused: one command over the pool's existing connection (new session).
func BenchmarkExecReused(b *testing.B) {
	f := newFixture(b)
	_, s := f.get(b, Options{})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Exec(ctx, Cmd{Command: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDialAndExec: a fresh connection (TCP, handshake, auth) per command, the cost
// the Pool saves.
func BenchmarkDialAndExec(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	for b.Loop() {
		p := f.pool(Options{})
		s, err := p.Get(ctx, f.target)
		if err == nil {
			_, err = s.Exec(ctx, Cmd{Command: "true"})
		}
		p.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}
