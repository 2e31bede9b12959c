package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/rollout"
	"github.com/haltfleet/haltfleet/runner"
	"github.com/haltfleet/haltfleet/tasks"
)

// engineFlags are shared by up and plan.
type engineFlags struct {
	fleetFlags
	pinAddresses bool
	experimental bool
	events       string
	quiet        bool
}

func (ef *engineFlags) register(fs *flag.FlagSet) {
	ef.fleetFlags.register(fs)
	fs.BoolVar(&ef.pinAddresses, "pin-addresses", false, "pin finite (DHCP) address lifetimes to forever instead of refusing such hosts")
	fs.BoolVar(&ef.experimental, "experimental", false, "allow init systems supported only from source (busybox)")
	fs.StringVar(&ef.events, "events", "", "write NDJSON progress events to `file`")
	fs.BoolVar(&ef.quiet, "quiet", false, "print only the recap and errors")
}

func (ef *engineFlags) options() tasks.Options {
	return tasks.Options{PinAddresses: ef.pinAddresses, Experimental: ef.experimental}
}

// rolloutFlags are up's staging flags.
type rolloutFlags struct {
	serial, maxFail, journal string
	step, yes, fresh         bool
}

func (rf *rolloutFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&rf.serial, "serial", "", "roll out in waves, as Ansible's serial: `N`, N%, or a list like 1,10%,50%,100% "+
		"(percentages of all hosts, rounded down, at least one host; the last entry repeats). Default: one wave")
	fs.StringVar(&rf.maxFail, "max-fail", "0", "failure `budget` per wave and for the whole run: N hosts or P%. The rollout stops "+
		"when failed (or unreachable) hosts are strictly GREATER than the budget (as Ansible's max_fail_percentage): "+
		"0 stops at the first failure, 1 tolerates one. Hosts not started stay untouched. Any failure in the first "+
		"wave (the canary) stops a multi-wave rollout")
	fs.StringVar(&rf.journal, "journal", "", "journal `file` (default $XDG_STATE_HOME/haltfleet/<sha256 of the inventory path>/journal.ndjson)")
	fs.BoolVar(&rf.step, "step", false, "ask before each wave")
	fs.BoolVar(&rf.yes, "yes", false, "do not ask (automation); overrides --step")
	fs.BoolVar(&rf.fresh, "fresh", false, "do not resume an unfinished run from the journal: work on every host again")
}

func runUp(ctx context.Context, args []string) int {
	fs := newFlagSet("up")
	var ef engineFlags
	var rf rolloutFlags
	ef.register(fs)
	rf.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	steps, err := rollout.ParseSerial(rf.serial)
	if err != nil {
		return usageError(err)
	}
	budget, err := rollout.ParseBudget(rf.maxFail)
	if err != nil {
		return usageError(err)
	}
	fl, err := ef.open()
	if err != nil {
		return fail(err)
	}
	defer fl.Close()
	jpath := rf.journal
	if jpath == "" {
		if jpath, err = rollout.DefaultPath(ef.inventory); err != nil {
			return fail(err)
		}
	}
	j, err := rollout.Open(jpath)
	if err != nil {
		return fail(err)
	}
	defer j.Close()
	sink, err := ef.sink()
	if err != nil {
		return fail(err)
	}
	defer sink.close()
	ru := &rolloutRun{fl: fl, ef: &ef, rf: &rf, steps: steps, budget: budget, journal: j, sink: sink, runID: newRunID()}
	sink.runID = ru.runID
	return ru.run(ctx)
}

// usageError reports a bad flag value.
func usageError(err error) int {
	fmt.Fprintf(Stderr, "haltfleet: %v\n", err)
	return exitUsage
}

// upHost is up for one host. A host whose SSH no longer answers, whose inventory wants
// it halted and which the journal records as halted by haltfleet, is not logged into: it
// is probed and reported as halted. Silence from any other host is "unreachable": an
// outage must never pass for a successful halt. A host lock
// left by a run that staleRun recognises (our own killed run) is taken over (in tasks.Up).
func upHost(ctx context.Context, fl *fleet, h *inventory.Host, opts tasks.Options, runID string, journalHalted bool, emit func(tasks.Event)) (tasks.UpResult, error) {
	t, err := target(h)
	if err != nil {
		return tasks.UpResult{Host: h.Name}, err
	}
	in := tasks.UpInput{Host: *h, Options: opts, Reconnect: fl.reconnect(h), ProbeFrom: fl.probeFrom, Events: emit}
	if resolved, err := fl.opts.SSHConfig.Resolve(t); err == nil {
		in.Dial = fl.dial(h, resolved)
	} else {
		return tasks.UpResult{Host: h.Name}, err
	}
	// The connection itself tells a halted host: no separate banner check first.
	r, err := fl.connect(ctx, h)
	if err != nil && h.Settings.Halt && silent(err) {
		if journalHalted {
			return tasks.ProbeHalted(ctx, in)
		}
		return tasks.UpResult{Host: h.Name}, fmt.Errorf("%s: %w: SSH does not answer (%v) and the journal has no record of haltfleet halting it; if another controller halted it, check it with `haltfleet audit`", h.Name, runner.ErrUnreachable, err)
	}
	if err != nil {
		return tasks.UpResult{Host: h.Name}, err
	}
	defer fl.release(h, r)
	in.Runner, in.RunID, in.StaleRun, in.Canons, in.Stop = r, runID, fl.staleRun, fl.canons, stopChan(ctx)
	// Up takes the host lock in its first round trip and releases it (or leaves it to
	// the halt, which clears /run).
	return tasks.Up(ctx, in)
}

func printProbes(w io.Writer, results []tasks.UpResult) {
	any := false
	for _, res := range results {
		for _, p := range res.Probes {
			if !any {
				fmt.Fprintln(w, "PROBES")
				any = true
			}
			verdict := "ok"
			if !p.OK {
				verdict = "FAILED"
			}
			seen := "closed"
			if p.Open {
				seen = "open"
			}
			if p.Err != "" {
				seen = "error: " + p.Err
			}
			fmt.Fprintf(w, "  %-8s %s -> %s %s: %s, expected %s  %s\n", res.Host, p.Probe.From, p.Probe.Proto, p.Probe.To, seen, p.Probe.Expect, verdict)
		}
	}
	if any {
		fmt.Fprintln(w)
	}
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	return strings.ReplaceAll(host, " ", "_") + "-" + hex.EncodeToString(b[:])
}
