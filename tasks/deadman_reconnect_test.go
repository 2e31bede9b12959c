package tasks

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

// TestWaitRollbackOverNewConnection: when the apply's own connection is dead, the
// rollback is asked for over a new one, so the run reports the restore instead of
// "rollback not confirmed".
func TestWaitRollbackOverNewConnection(t *testing.T) {
	dead := newFakeHost("fw1")
	dead.respond = func(string) (runner.Result, error, bool) {
		return runner.Result{}, runner.ErrDisconnected, true
	}
	fresh := newFakeHost("fw1")
	fresh.respond = func(c string) (runner.Result, error, bool) {
		if strings.Contains(c, "deadman.fired") {
			return runner.Result{Stdout: []byte("rolled-back 0\n")}, nil, true
		}
		return runner.Result{}, nil, false
	}
	reconnects := 0
	reconnect := func(context.Context) (runner.Runner, error) { reconnects++; return fresh, nil }
	cause := errors.New("confirm over a new connection: connection refused")
	err := waitRollback(context.Background(), dead, reconnect, time.Now().Add(time.Second), cause)
	if !errors.Is(err, ErrRolledBack) || !errors.Is(err, cause) {
		t.Fatalf("want ErrRolledBack wrapping the cause, got %v", err)
	}
	if reconnects != 1 || len(fresh.commands()) != 1 {
		t.Fatalf("reconnects %d, commands over the new connection %d", reconnects, len(fresh.commands()))
	}
	// Without a way to reconnect the old behaviour stands: unconfirmed, bounded.
	if testing.Short() {
		return
	}
	err = waitRollback(context.Background(), dead, nil, time.Now().Add(-rollbackGrace+2*time.Second), cause)
	if !errors.Is(err, ErrRollbackUnconfirmed) {
		t.Fatalf("without reconnect: %v", err)
	}
}
