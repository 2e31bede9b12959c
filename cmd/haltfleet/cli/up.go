package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/haltfleet/haltfleet/inventory"
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

// eventSink renders events as plain lines and, with --events, NDJSON.
type eventSink struct {
	mu     sync.Mutex
	out    io.Writer // nil when quiet
	ndjson *json.Encoder
	file   *os.File
}

func (ef *engineFlags) sink() (*eventSink, error) {
	s := &eventSink{}
	if !ef.quiet {
		s.out = Stdout
	}
	if ef.events != "" {
		f, err := os.OpenFile(ef.events, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, err
		}
		s.file, s.ndjson = f, json.NewEncoder(f)
	}
	return s, nil
}

func (s *eventSink) emit(e tasks.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != nil && e.Status != tasks.StatusStart {
		fmt.Fprintf(s.out, "%s %-8s %-7s %s\n", e.Time.Format("15:04:05"), e.Host, e.Stage+":", oneLine(e.Status+" "+e.Message))
	}
	if s.ndjson != nil {
		_ = s.ndjson.Encode(e)
	}
}

func (s *eventSink) close() {
	if s.file != nil {
		s.file.Close()
	}
}

func runUp(ctx context.Context, args []string) int {
	fs := newFlagSet("up")
	var ef engineFlags
	ef.register(fs)
	fs.Bool("yes", false, "do not ask for confirmation (automation)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fl, err := ef.open()
	if err != nil {
		return fail(err)
	}
	defer fl.Close()
	sink, err := ef.sink()
	if err != nil {
		return fail(err)
	}
	defer sink.close()
	runID := newRunID()

	rows := make([]hostResult, len(fl.hosts))
	results := make([]tasks.UpResult, len(fl.hosts))
	forEach(ctx, len(fl.hosts), ef.forks, func(ctx context.Context, i int) {
		h := fl.hosts[i]
		start := time.Now()
		res, err := upHost(ctx, fl, h, ef.options(), runID, sink.emit)
		results[i] = res
		rows[i] = hostResult{Host: h.Name, Duration: time.Since(start), Changes: len(res.Changes), Err: err}
		switch {
		case err != nil:
			rows[i].Outcome, rows[i].Detail = failOutcome(err), err.Error()
		case res.Halted:
			rows[i].Outcome = outcomeHalted
			rows[i].Detail = fmt.Sprintf("halted and probed in %s (SSH gone after %s, %d probes ok)",
				res.Elapsed.Round(100*time.Millisecond), res.Gone.Round(100*time.Millisecond), len(res.Probes))
		case len(res.Changes) > 0:
			rows[i].Outcome = outcomeChanged
		default:
			rows[i].Outcome = outcomeOK
		}
	})
	fmt.Fprintln(Stdout)
	printProbes(Stdout, results)
	bad := printRecap(Stdout, rows)
	if bad > 0 || ctx.Err() != nil {
		return exitError
	}
	return exitOK
}

// upHost is up for one host. A host whose SSH no longer answers but whose inventory
// wants it halted is not logged into: it is probed and reported as halted.
func upHost(ctx context.Context, fl *fleet, h *inventory.Host, opts tasks.Options, runID string, emit func(tasks.Event)) (tasks.UpResult, error) {
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
	if h.Settings.Halt && in.Dial != nil {
		dctx, cancel := context.WithTimeout(ctx, fl.ff.connectTimeout)
		derr := in.Dial(dctx)
		cancel()
		if derr != nil {
			return tasks.ProbeHalted(ctx, in)
		}
	}
	r, err := fl.connect(ctx, h)
	if err != nil {
		return tasks.UpResult{Host: h.Name}, err
	}
	in.Runner = r
	if err := tasks.Lock(ctx, r, runID); err != nil {
		return tasks.UpResult{Host: h.Name}, err
	}
	res, err := tasks.Up(ctx, in)
	if !res.Halted {
		// The lock lives in /run: a halted host needs no unlock, a live one does.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if uerr := tasks.Unlock(uctx, r, runID); uerr != nil && err == nil && !errors.Is(uerr, context.Canceled) {
			err = uerr
		}
		cancel()
	}
	return res, err
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
