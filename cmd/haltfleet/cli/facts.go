package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/haltfleet/haltfleet/runner"
	"github.com/haltfleet/haltfleet/tasks"
)

func runFacts(ctx context.Context, args []string) int {
	fs := newFlagSet("facts")
	var ff fleetFlags
	ff.register(fs)
	asJSON := fs.Bool("json", false, "print JSON (one array, hosts in inventory order)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fl, err := ff.open()
	if err != nil {
		return fail(err)
	}
	defer fl.Close()

	type row struct {
		Facts *tasks.Facts `json:"facts,omitempty"`
		Host  string       `json:"host"`
		Error string       `json:"error,omitempty"`
		err   error
		took  time.Duration
	}
	rows := make([]row, len(fl.hosts))
	forEach(ctx, len(fl.hosts), ff.forks, func(ctx context.Context, i int) {
		h := fl.hosts[i]
		start := time.Now()
		rows[i].Host = h.Name
		r, err := fl.connect(ctx, h)
		if err == nil {
			var f tasks.Facts
			if f, err = tasks.Gather(ctx, r); err == nil {
				f.Host = h.Name
				rows[i].Facts = &f
			}
			fl.release(h, r)
		}
		if err != nil {
			rows[i].err, rows[i].Error = err, err.Error()
		}
		rows[i].took = time.Since(start)
	})
	bad := 0
	if *asJSON {
		b, _ := json.MarshalIndent(rows, "", "  ")
		fmt.Fprintln(Stdout, string(b))
		for _, r := range rows {
			if r.err != nil {
				bad++
			}
		}
	} else {
		recap := make([]hostResult, len(rows))
		for i, r := range rows {
			recap[i] = hostResult{Host: r.Host, Outcome: outcomeOK, Duration: r.took}
			if r.err != nil {
				recap[i].Outcome, recap[i].Detail, recap[i].Err = failOutcome(r.err), r.err.Error(), r.err
				continue
			}
			fmt.Fprintf(Stdout, "== %s\n", r.Host)
			for _, kv := range r.Facts.Summary() {
				fmt.Fprintf(Stdout, "  %-14s %s\n", kv.Key, kv.Value)
			}
		}
		fmt.Fprintln(Stdout)
		bad = printRecap(Stdout, recap)
	}
	if bad > 0 || ctx.Err() != nil {
		return exitError
	}
	return exitOK
}

// failOutcome tells unreachable hosts (network, auth, host key) from failed ones.
func failOutcome(err error) string {
	for _, e := range []error{runner.ErrUnreachable, runner.ErrTimeout, runner.ErrAuthFailed, runner.ErrHostKeyMismatch, runner.ErrHostKeyUnknown} {
		if errors.Is(err, e) {
			return outcomeUnreachable
		}
	}
	return outcomeFailed
}
