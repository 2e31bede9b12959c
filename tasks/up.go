package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// Defaults when the inventory leaves a bound at zero.
const (
	defaultDeadman = 60 * time.Second
	defaultSSHGone = 120 * time.Second
)

// gatherFacts is Gather; tests swap it to describe a host without a real one.
var gatherFacts = Gather

// ErrProbeFailed: at least one probe saw something other than what it expected.
var ErrProbeFailed = errors.New("probe failed")

// ErrStopped: a graceful stop (the first Ctrl-C) came before the halt; the host was
// verified and is left running, unlocked.
var ErrStopped = errors.New("stopped before the halt (interrupted): verified and left running")

// UpInput is everything `up` needs for one host; the CLI owns connections and concurrency.
type UpInput struct {
	Host    inventory.Host
	Runner  runner.Runner // the open connection to Host
	Options Options
	// Reconnect opens a NEW connection to Host: confirming the dead-man timer over it
	// proves the new ruleset still lets the controller in.
	Reconnect func(ctx context.Context) (runner.Runner, error)
	// Dial returns nil while Host's SSH answers (see DialSSH); used after the halt.
	Dial func(ctx context.Context) error
	// ProbeFrom returns a runner on a probe's From host (inventory.Controller: local).
	// The CLI owns (and closes) these runners.
	ProbeFrom func(ctx context.Context, from string) (runner.Runner, error)
	// Events receives progress; nil drops it.
	Events func(Event)
	// Canons shares canonical desired rulesets across the run's hosts; nil: Up keeps one
	// for the host (plan and verify still share it).
	Canons *Canons
	// RunID takes the host lock for Up in the same round trip as the read ("" takes none).
	RunID string
	// StaleRun reports whether a lock held by run id may be taken over (a run of this
	// inventory the journal knows is dead); nil never takes over.
	StaleRun func(id string) bool
	// Stop is closed by a graceful stop: the steps in progress finish (an apply is
	// verified), but no halt starts after it. nil never stops.
	Stop <-chan struct{}
}

// UpResult is what `up` did to one host.
type UpResult struct {
	Host    string        `json:"host"`
	Facts   Facts         `json:"facts"`
	Changes []Change      `json:"changes"` // applied, in order
	Report  Report        `json:"report"`
	Halted  bool          `json:"halted"`
	Gone    time.Duration `json:"gone"` // halt trigger until SSH stopped answering
	Probes  []ProbeResult `json:"probes,omitempty"`
	// Elapsed runs from the start to "halted and probed" (or to the last step done).
	Elapsed time.Duration `json:"elapsed"`
}

func (in UpInput) emit(stage, status, format string, args ...any) {
	if in.Events != nil {
		in.Events(Event{Host: in.Host.Name, Stage: stage, Status: status, Message: fmt.Sprintf(format, args...), Time: time.Now()})
	}
}

// fail emits the failure and returns err with host and stage unless it has them.
func (in UpInput) fail(stage string, err error) error {
	in.emit(stage, StatusFailed, "%v", err)
	return err
}

// prepare reads facts and state in one round trip (taking the host lock for lockID),
// refuses what cannot be parked and plans every change but the halt. desired is the
// rendered ruleset ("" when none is set); held is the lock id now held ("" when none).
func prepare(ctx context.Context, in UpInput, lockID string, withDiff bool) (f Facts, changes []Change, desired, held string, err error) {
	host, s := in.Host.Name, in.Host.Settings
	if s.Ruleset != "" {
		if desired, err = RenderRuleset(&in.Host); err != nil {
			return f, nil, "", "", in.fail("plan", err)
		}
	}
	if err = validateSysctls(host, s.Sysctls); err != nil {
		return f, nil, "", "", in.fail("plan", err)
	}
	if lockID != "" {
		in.emit("lock", StatusStart, "taking the host lock; reading facts and state")
	} else {
		in.emit("facts", StatusStart, "gathering facts")
	}
	publish := startCanon(ctx, in, desired)
	rd, err := readState(ctx, in.Runner, readSpec{lockID: lockID, ruleset: desired != "", sysctls: sortedKeys(s.Sysctls)})
	publish(rd, err)
	f = rd.facts
	if f.Host == "" {
		f.Host = host
	}
	if err != nil {
		// The lock may have been taken before the read failed: the caller's unlock is
		// safe either way (it removes only a lock this run owns).
		return f, nil, "", lockID, in.fail("facts", err)
	}
	if lockID != "" {
		owner, lerr := lockResult(host, rd.sec)
		switch {
		case lerr == nil:
			held = lockID
			in.emit("lock", StatusOK, "held for run %s", lockID)
		case owner != "" && errors.Is(lerr, ErrLocked) && in.StaleRun != nil && in.StaleRun(owner):
			// Our journal's lock proves that run is dead: continue under its lock.
			in.emit("lock", StatusOK, "taking over the lock of killed run %s", owner)
			held = owner
		default:
			return f, nil, "", "", in.fail("lock", lerr)
		}
	}
	// From here on a failure leaves the lock to the caller's unlock (held is returned).
	in.emit("facts", StatusOK, "%s, init %s, firewall %s", f.Distro.ID, f.Init, f.Firewall.Backend)
	if err = Refuse(f, s, in.Options); err != nil {
		return f, nil, "", held, in.fail("refuse", err)
	}
	in.emit("plan", StatusStart, "planning")
	if desired != "" {
		ch, err := rulesetPlan(ctx, in.Runner, host, f, in.Canons, desired, rd.sec, withDiff)
		if err != nil {
			return f, nil, "", held, in.fail("plan", err)
		}
		changes = append(changes, ch...)
	}
	if len(s.Sysctls) > 0 {
		ch, err := sysctlChanges(host, s.Sysctls, rd.sec)
		if err != nil {
			return f, nil, "", held, in.fail("plan", err)
		}
		changes = append(changes, ch...)
	}
	if s.Halt {
		if s.PinAddresses || in.Options.PinAddresses {
			changes = append(changes, PlanPin(host, f)...)
		}
		ch, err := PlanArm(ctx, in.Runner, host, f, s)
		if err != nil {
			return f, nil, "", held, in.fail("plan", err)
		}
		changes = append(changes, ch...)
	}
	in.emit("plan", StatusOK, "%d changes", len(changes))
	return f, changes, desired, held, nil
}

// startCanon makes the run's first host of a desired ruleset load it in a throwaway
// namespace on a second session while its read runs; the hosts after it compare against
// that. The returned publish must be called with the read's outcome (it waits for the
// load and files it under this host's key); for every other host it does nothing.
func startCanon(ctx context.Context, in UpInput, desired string) func(stateRead, error) {
	if desired == "" {
		return func(stateRead, error) {}
	}
	publish, claimed := in.Canons.claim(desired)
	if !claimed {
		return func(stateRead, error) {}
	}
	type canonResult struct {
		canon []string
		text  string
		err   error
	}
	ch := make(chan canonResult, 1)
	go func() {
		c, t, err := canonicaliseDesired(ctx, in.Runner, desired)
		ch <- canonResult{c, t, err}
	}()
	return func(rd stateRead, err error) {
		key := ""
		if live, lerr := liveRuleset(in.Host.Name, rd.sec); err == nil && lerr == nil {
			key = stateKey(desired, rd.facts, live, rd.sec)
		}
		r := <-ch
		publish(key, r.canon, r.text, r.err)
	}
}

// Plan is Up without touching the host (beyond the temp files reading it needs, which
// are removed): the changes Up would make, the halt last.
func Plan(ctx context.Context, in UpInput) ([]Change, error) {
	f, changes, _, _, err := prepare(ctx, in, "", true)
	if err != nil {
		return nil, err
	}
	if in.Host.Settings.Halt {
		changes = append(changes, HaltChange(in.Host.Name, f))
	}
	return changes, nil
}

// Up brings one host to its desired state: facts, refusal, plan, apply (the ruleset
// behind the dead-man timer), verify, and with Halt set: halt, wait until SSH is gone,
// probe. It never halts a host whose verification failed. On a live armed host in sync
// it changes nothing before the halt.
func Up(ctx context.Context, in UpInput) (UpResult, error) {
	start := time.Now()
	s := in.Host.Settings
	res := UpResult{Host: in.Host.Name}
	if in.Canons == nil {
		in.Canons = NewCanons()
	}
	held := ""
	finish := func(err error) (UpResult, error) {
		if held != "" && !res.Halted {
			// The lock lives in /run: a halted host needs no unlock, a live one does.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if uerr := Unlock(uctx, in.Runner, held); uerr != nil && err == nil && !errors.Is(uerr, context.Canceled) {
				err = uerr
			}
			cancel()
		}
		res.Elapsed = time.Since(start)
		return res, err
	}
	f, changes, desired, lockID, err := prepare(ctx, in, in.RunID, false)
	held = lockID
	res.Facts = f
	if err != nil {
		return finish(err)
	}

	in.emit("apply", StatusStart, "%d changes", len(changes))
	deadman := time.Duration(s.DeadmanSeconds) * time.Second
	if deadman <= 0 {
		deadman = defaultDeadman
	}
	env := ApplyEnv{Confirm: in.confirm, Reconnect: in.Reconnect, Deadman: deadman, OnChange: func(ch Change) {
		res.Changes = append(res.Changes, ch)
		in.emit("apply", StatusChanged, "%s", ch.Summary)
	}}
	if err := Apply(ctx, in.Runner, changes, env); err != nil {
		return finish(in.fail("apply", err))
	}
	in.emit("apply", StatusOK, "%d changes applied", len(res.Changes))

	in.emit("verify", StatusStart, "reading back")
	// A host that stays up and has no probes is unlocked by the verify read itself; one
	// about to halt, or to be probed, keeps its lock until then, so no other run changes
	// it between the verification and the halt or under the probes.
	unlockID := ""
	if !s.Halt && len(s.Probes) == 0 {
		unlockID = held
	}
	var unlocked bool
	res.Report, unlocked, err = verify(ctx, in.Runner, f, s, desired, in.Canons, unlockID)
	if unlocked {
		held = ""
	}
	if err != nil {
		return finish(in.fail("verify", err))
	}
	in.emit("verify", StatusOK, "%d checks passed", len(res.Report.Checks))

	if s.Halt {
		select {
		case <-in.Stop:
			return finish(in.fail("halt", fmt.Errorf("%s: halt: %w", in.Host.Name, ErrStopped)))
		default:
		}
		in.emit("halt", StatusStart, "halting")
		if err := Halt(ctx, in.Runner, f); err != nil {
			return finish(in.fail("halt", err))
		}
		if in.Dial == nil {
			return finish(in.fail("gone", fmt.Errorf("%s: gone: no way to dial SSH", in.Host.Name)))
		}
		bound := time.Duration(s.SSHGoneSeconds) * time.Second
		if bound <= 0 {
			bound = defaultSSHGone
		}
		res.Gone, err = WaitGone(ctx, in.Dial, bound)
		if err != nil {
			return finish(in.fail("gone", fmt.Errorf("%s: gone: %w", in.Host.Name, err)))
		}
		res.Halted = true
		in.emit("halt", StatusOK, "SSH gone after %s", res.Gone.Round(time.Millisecond))
	}
	settle := time.Duration(0)
	if res.Halted {
		settle = probeSettle
	}
	res.Probes, err = runProbes(ctx, in, settle)
	return finish(err)
}

// confirm cancels the dead-man timer over a fresh connection.
func (in UpInput) confirm(ctx context.Context) error {
	if in.Reconnect == nil {
		return fmt.Errorf("%s: confirm: no way to open a new connection", in.Host.Name)
	}
	nr, err := in.Reconnect(ctx)
	if err != nil {
		return fmt.Errorf("%s: confirm: new connection: %w", in.Host.Name, err)
	}
	defer nr.Close()
	if _, err := nr.Exec(ctx, runner.Cmd{Command: DeadmanCancelCommand(), Sudo: true}); err != nil {
		return fmt.Errorf("%s: confirm: cancel the dead-man timer: %w", in.Host.Name, err)
	}
	return nil
}

// ProbeHalted is `up` for a host that no longer answers SSH: it can only be probed.
func ProbeHalted(ctx context.Context, in UpInput) (UpResult, error) {
	start := time.Now()
	res := UpResult{Host: in.Host.Name, Halted: true}
	in.emit("halt", StatusSkipped, "host does not answer SSH: probing only")
	var err error
	res.Probes, err = runProbes(ctx, in, 0)
	res.Elapsed = time.Since(start)
	return res, err
}

// probeSettle bounds how long a host that has just halted gets to settle before its
// probes count: its shutdown runs on the CPU that forwards, so on a slow machine a probe
// can time out while the halt is still in progress. A round with a failure is repeated
// (all probes, so the verdict comes from one consistent round) until this bound.
var probeSettle = 30 * time.Second

func runProbes(ctx context.Context, in UpInput, settle time.Duration) ([]ProbeResult, error) {
	probes := in.Host.Settings.Probes
	if len(probes) == 0 {
		return nil, nil
	}
	if in.ProbeFrom == nil {
		return nil, in.fail("probe", fmt.Errorf("%s: probe: no way to reach the probing hosts", in.Host.Name))
	}
	deadline := time.Now().Add(settle)
	out, failed := probeRound(ctx, in, probes)
	for round := 2; failed > 0 && time.Now().Before(deadline) && ctx.Err() == nil; round++ {
		in.emit("probe", StatusStart, "%d of %d probes failed; probing again (round %d) while the host settles", failed, len(probes), round)
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
		out, failed = probeRound(ctx, in, probes)
	}
	for _, pr := range out {
		status := StatusOK
		if !pr.OK {
			status = StatusFailed
		}
		p := pr.Probe
		in.emit("probe", status, "%s -> %s %s: %s (expect %s)%s", p.From, p.Proto, p.To, openWord(pr), p.Expect, errSuffix(pr.Err))
	}
	if failed > 0 {
		return out, fmt.Errorf("%s: probe: %w: %d of %d", in.Host.Name, ErrProbeFailed, failed, len(probes))
	}
	return out, nil
}

// probeRound runs every probe once.
func probeRound(ctx context.Context, in UpInput, probes []inventory.Probe) ([]ProbeResult, int) {
	var out []ProbeResult
	failed := 0
	for _, p := range probes {
		r, err := in.ProbeFrom(ctx, p.From)
		var pr ProbeResult
		if err != nil {
			pr = ProbeResult{Probe: p, Err: fmt.Sprintf("%s: %v", p.From, err)}
		} else {
			pr = RunProbe(ctx, r, p)
		}
		out = append(out, pr)
		if !pr.OK {
			failed++
		}
	}
	return out, failed
}

func openWord(pr ProbeResult) string {
	switch {
	case pr.Err != "":
		return "error"
	case pr.Open:
		return "open"
	}
	return "closed"
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}
