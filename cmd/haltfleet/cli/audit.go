package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/rollout"
	"github.com/haltfleet/haltfleet/tasks"
)

// driftItem is one thing on a host that differs from what the inventory wants.
type driftItem struct {
	Item    string `json:"item"` // ruleset, sysctl KEY, persist PATH, arm PATH, ssh, probe ...
	Summary string `json:"summary"`
	Diff    string `json:"diff,omitempty"`
}

// auditResult is one host's audit.
type auditResult struct {
	Host     string              `json:"host"`
	State    string              `json:"state"`  // live or halted (as found)
	Status   string              `json:"status"` // in-sync, drift, error
	Drift    []driftItem         `json:"drift,omitempty"`
	Probes   []tasks.ProbeResult `json:"probes,omitempty"`
	Error    string              `json:"error,omitempty"`
	Duration time.Duration       `json:"duration_ns"`
}

const (
	auditInSync = "in-sync"
	auditDrift  = "drift"
	auditError  = "error"
)

func runAudit(ctx context.Context, args []string) int {
	fs := newFlagSet("audit")
	var ef engineFlags
	ef.register(fs)
	format := fs.String("format", "text", "output `format`: text, json or junit (JUnit XML as Jenkins and GitLab read it)")
	output := fs.String("o", "", "write the report to `file` instead of stdout (the exit code still tells drift)")
	journal := fs.String("journal", "", "up's journal `file` (default as up): names hosts haltfleet halted")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *format != "text" && *format != "json" && *format != "junit" {
		return usageError(fmt.Errorf("--format %q: want text, json or junit", *format))
	}
	fl, err := ef.open()
	if err != nil {
		return fail(err)
	}
	defer fl.Close()
	jpath := *journal
	if jpath == "" {
		if jpath, err = rollout.DefaultPath(ef.inventory); err != nil {
			return fail(err)
		}
	}
	records, err := rollout.Read(jpath)
	if err != nil {
		return fail(err)
	}
	states := rollout.States(records)
	start := time.Now()
	results := make([]auditResult, len(fl.hosts))
	forEach(ctx, len(fl.hosts), ef.forks, func(ctx context.Context, i int) {
		h := fl.hosts[i]
		t0 := time.Now()
		results[i] = auditHost(ctx, fl, h, ef.options(), states[h.Name])
		results[i].Duration = time.Since(t0)
	})
	if ctx.Err() != nil {
		return fail(fmt.Errorf("audit: %w", ctx.Err()))
	}
	w := Stdout
	if *output != "" {
		f, err := os.OpenFile(*output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		w = f
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			Hosts   []auditResult  `json:"hosts"`
			Summary map[string]int `json:"summary"`
		}{results, auditCounts(results)})
	case "junit":
		err = writeJUnit(w, "haltfleet audit "+ef.inventory, start, time.Since(start), results)
	default:
		printAudit(w, results, ef.quiet)
	}
	if err != nil {
		return fail(err)
	}
	c := auditCounts(results)
	switch {
	case c[auditError] > 0:
		return exitError
	case c[auditDrift] > 0:
		return exitDiff
	}
	return exitOK
}

// auditHost compares one host with the inventory. A host that should be halted and
// whose SSH is closed is only probed; one that answers SSH is planned like a live host
// (a halted host answering again was rebooted: drift).
func auditHost(ctx context.Context, fl *fleet, h *inventory.Host, opts tasks.Options, st rollout.HostState) auditResult {
	res := auditResult{Host: h.Name, State: "live"}
	broken := func(err error) auditResult {
		res.Status, res.Error = auditError, err.Error()
		return res
	}
	in := tasks.UpInput{Host: *h, Options: opts, ProbeFrom: fl.probeFrom, Canons: fl.canons}
	// The connection itself tells a halted host: no separate banner check first.
	r, err := fl.connect(ctx, h)
	if err != nil && h.Settings.Halt && silent(err) {
		res.State = "halted"
		up, err := tasks.ProbeHalted(ctx, in)
		res.Probes = up.Probes
		for _, p := range up.Probes {
			if p.Err != "" {
				return broken(fmt.Errorf("%s: probe %s -> %s %s: %s", h.Name, p.Probe.From, p.Probe.Proto, p.Probe.To, p.Err))
			}
			if !p.OK {
				res.Drift = append(res.Drift, driftItem{Item: fmt.Sprintf("probe %s -> %s %s", p.Probe.From, p.Probe.Proto, p.Probe.To),
					Summary: fmt.Sprintf("%s, expected %s", openWord(p.Open), p.Probe.Expect)})
			}
		}
		if err != nil && len(res.Drift) == 0 {
			return broken(err)
		}
		return finishAudit(res)
	}
	if err != nil {
		return broken(err)
	}
	if h.Settings.Halt && st.Halted {
		res.Drift = append(res.Drift, driftItem{Item: "ssh",
			Summary: fmt.Sprintf("answers SSH again, but run %s halted it: rebooted or power-cycled?", st.HaltedRun)})
	}
	defer fl.release(h, r)
	in.Runner = r
	changes, err := tasks.Plan(ctx, in)
	if err != nil && len(res.Drift) > 0 {
		// A rebooted halted host is drift first; why it cannot be planned is detail.
		res.Drift = append(res.Drift, driftItem{Item: "plan", Summary: "cannot compare with the inventory: " + err.Error()})
		return finishAudit(res)
	}
	if err != nil {
		return broken(err)
	}
	for _, c := range changes {
		res.Drift = append(res.Drift, driftItem{Item: changeItem(c), Summary: c.Summary, Diff: changeDiff(c)})
	}
	return finishAudit(res)
}

func finishAudit(res auditResult) auditResult {
	res.Status = auditInSync
	if len(res.Drift) > 0 {
		res.Status = auditDrift
	}
	return res
}

func openWord(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}

// changeItem names what a planned change would fix: the stage plus the path or key.
func changeItem(c tasks.Change) string {
	switch {
	case c.Path != "":
		return c.Stage + " " + c.Path
	case c.Key != "":
		return c.Stage + " " + c.Key
	}
	return c.Stage
}

// changeDiff is the change's diff, or for commands (enabling a unit or rc script) the
// command itself, so every item says exactly what up would do.
func changeDiff(c tasks.Change) string {
	switch {
	case c.Diff != "":
		return c.Diff
	case c.Kind == tasks.KindSysctl:
		return fmt.Sprintf("-%s = %s\n+%s = %s\n", c.Key, c.Old, c.Key, c.New)
	case c.Command != "":
		return "$ " + c.Command + "\n"
	}
	return ""
}

func auditCounts(results []auditResult) map[string]int {
	c := map[string]int{auditInSync: 0, auditDrift: 0, auditError: 0}
	for _, r := range results {
		c[r.Status]++
	}
	return c
}

// printAudit is the text report; quiet leaves out hosts in sync (cron mails only drift).
func printAudit(w io.Writer, results []auditResult, quiet bool) {
	for _, r := range results {
		switch r.Status {
		case auditInSync:
			if !quiet {
				fmt.Fprintf(w, "== %s: in sync (%s)\n", r.Host, r.State)
			}
		case auditError:
			fmt.Fprintf(w, "== %s: ERROR (%s): %s\n", r.Host, r.State, r.Error)
		default:
			fmt.Fprintf(w, "== %s: DRIFT (%s): %d items\n", r.Host, r.State, len(r.Drift))
			for _, d := range r.Drift {
				fmt.Fprintf(w, "  ~ [%s] %s\n", d.Item, d.Summary)
				writeIndented(w, d.Diff, "      ")
			}
		}
	}
	c := auditCounts(results)
	if !quiet || c[auditDrift]+c[auditError] > 0 {
		fmt.Fprintf(w, "audit: %d hosts, %d in sync, %d drifted, %d errors\n", len(results), c[auditInSync], c[auditDrift], c[auditError])
	}
}

func writeIndented(w io.Writer, text, indent string) {
	if text == "" {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(w, "%s%s\n", indent, line)
	}
}
