package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// forEach runs fn for every index in [0,n) with at most forks in flight. Results land in
// a slice indexed like the hosts; one failing host never cancels its siblings.
func forEach(ctx context.Context, n, forks int, fn func(ctx context.Context, i int)) {
	forEachUntil(ctx, n, forks, nil, fn)
}

// forEachUntil is forEach that also starts nothing more once stop (checked when a slot
// is free, so after each host finishes) returns true. Hosts in flight keep their ctx.
func forEachUntil(ctx context.Context, n, forks int, stop func() bool, fn func(ctx context.Context, i int)) {
	if forks < 1 {
		forks = 1
	}
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		if stop != nil && stop() {
			<-sem
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			fn(ctx, i)
		}(i)
	}
	wg.Wait()
}

// Host outcomes in the recap, as Ansible users read them.
const (
	outcomeOK          = "ok"
	outcomeChanged     = "changed"
	outcomeHalted      = "halted"
	outcomeFailed      = "failed"
	outcomeSkipped     = "skipped"
	outcomeUnreachable = "unreachable"
)

// hostResult is one row of the recap.
type hostResult struct {
	Host     string        `json:"host"`
	Outcome  string        `json:"outcome"`
	Changes  int           `json:"changes"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Err      error         `json:"-"`
}

// printRecap prints the per-host table and a count line; it returns the number of failed
// or unreachable hosts.
func printRecap(w io.Writer, rows []hostResult) int {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tRESULT\tCHANGES\tTIME\tDETAIL")
	bad := 0
	for _, r := range rows {
		if r.Outcome == outcomeFailed || r.Outcome == outcomeUnreachable {
			bad++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Host, r.Outcome, r.Changes, r.Duration.Round(100*time.Millisecond), oneLine(r.Detail))
	}
	tw.Flush()
	for _, r := range rows {
		if r.Err != nil {
			fmt.Fprintf(w, "error: %v\n", r.Err)
		}
	}
	fmt.Fprintf(w, "recap: %s\n", recapCounts(rows))
	return bad
}

// recapCounts is "ok=N changed=N halted=N failed=N skipped=N unreachable=N".
func recapCounts(rows []hostResult) string {
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Outcome]++
	}
	var parts []string
	for _, k := range []string{outcomeOK, outcomeChanged, outcomeHalted, outcomeFailed, outcomeSkipped, outcomeUnreachable} {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	return strings.Join(parts, " ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
