package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/rollout"
	"github.com/haltfleet/haltfleet/tasks"
)

// Once stop says so, no host starts; hosts in flight finish with a live context.
func TestForEachUntilFinishesInFlightHosts(t *testing.T) {
	var started, finished atomic.Int32
	var stop atomic.Bool
	var cancelled atomic.Bool
	release := make(chan struct{})
	go func() {
		for started.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		stop.Store(true) // the first Ctrl-C, or a budget exceeded
		close(release)
	}()
	forEachUntil(context.Background(), 10, 3, stop.Load, func(ctx context.Context, i int) {
		started.Add(1)
		<-release
		time.Sleep(10 * time.Millisecond) // the rest of the host's atomic step
		if ctx.Err() != nil {
			cancelled.Store(true)
		}
		finished.Add(1)
	})
	if started.Load() != 3 || finished.Load() != 3 || cancelled.Load() {
		t.Errorf("started %d finished %d cancelled %v; want 3 3 false", started.Load(), finished.Load(), cancelled.Load())
	}
}

// The first interrupt stops up gracefully (its hosts keep their context); read-only
// commands get a context that the same interrupt cancels.
func TestGracefulStopContext(t *testing.T) {
	stop := make(chan struct{})
	ctx := withStop(context.Background(), stop)
	ro := cancelOnStop(ctx)
	close(stop)
	select {
	case <-ro.Done():
	case <-time.After(time.Second):
		t.Fatal("read-only context not cancelled by the graceful stop")
	}
	if ctx.Err() != nil {
		t.Error("up's context was cancelled by the first interrupt")
	}
	select {
	case <-stopChan(ctx):
	default:
		t.Error("stopChan not closed")
	}
	if stopChan(context.Background()) != nil {
		t.Error("stopChan without a stop must be nil")
	}
}

func TestUpFlagErrorsAndHelp(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "hosts.yml")
	os.WriteFile(inv, []byte("all:\n  hosts:\n    a:\n      haltfleet_halt: false\n"), 0o644)
	for _, args := range [][]string{
		{"up", "-i", inv, "--serial", "0"},
		{"up", "-i", inv, "--serial", "1,x"},
		{"up", "-i", inv, "--max-fail", "101%"},
		{"audit", "-i", inv, "--format", "xml"},
	} {
		if code, out := haltfleet(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
	_, out := haltfleet(t, "up", "--help")
	for _, want := range []string{"-serial ", "strictly GREATER", "canary", "-max-fail ", "-step", "-yes", "-journal ", "-fresh", "-forks "} {
		if !strings.Contains(out, want) {
			t.Errorf("up --help lacks %q", want)
		}
	}
	_, out = haltfleet(t, "--help")
	if !strings.Contains(out, "audit") {
		t.Error("--help lacks audit")
	}
}

// Two controllers on one inventory: the second is refused at once, touching nothing.
func TestUpRefusesWhileAnotherRunHoldsTheJournal(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.yml")
	os.WriteFile(inv, []byte("all:\n  hosts:\n    a:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n      haltfleet_halt: false\n"), 0o644)
	jpath := filepath.Join(dir, "j.ndjson")
	j, err := rollout.Open(jpath)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	code, out := haltfleet(t, "up", "-i", inv, "-F", "none", "--yes", "--journal", jpath)
	if code != exitError || !strings.Contains(out, "another haltfleet run holds the journal") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if n := len(j.Records()); n != 0 {
		t.Errorf("the refused run wrote %d records", n)
	}
}

// An unreachable host fails; with --max-fail 0 and --serial 1 the rollout stops there:
// the next hosts are reported "not started", the journal says why the run ended.
func TestBudgetStopsBeforeTheNextWave(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.yml")
	os.WriteFile(inv, []byte(`all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: 1
    haltfleet_halt: false
  hosts:
    a:
    b:
    c:
`), 0o644)
	jpath := filepath.Join(dir, "j.ndjson")
	events := filepath.Join(dir, "e.ndjson")
	code, out := haltfleet(t, "up", "-i", inv, "-F", "none", "--yes", "--serial", "1", "--journal", jpath, "--events", events, "--timeout", "2s")
	if code != exitError || !strings.Contains(out, "recap: ok=0 changed=0 halted=0 failed=0 skipped=2 unreachable=1") ||
		!strings.Contains(out, "rollout stopped: a failed in the first wave (the canary)") || strings.Count(out, "not started\n") != 2 {
		t.Errorf("exit %d\n%s", code, out)
	}
	recs, _ := rollout.Read(jpath)
	last := recs[len(recs)-1]
	if last.Stage != rollout.StageRunEnd || !strings.Contains(last.Detail, "canary") {
		t.Errorf("journal ends with %+v", last)
	}
	ev := readEvents(t, events)
	if len(ev) == 0 || ev[len(ev)-1].Stage != stageRollout || ev[0].RunID == "" {
		t.Errorf("events: %+v", ev)
	}
	// One wave (no canary) with a budget of 2: every host is tried; the third failure
	// exceeds the budget after the fact.
	code, out = haltfleet(t, "up", "-i", inv, "-F", "none", "--yes", "--max-fail", "2", "--journal", jpath, "--timeout", "2s")
	if code != exitError || !strings.Contains(out, "unreachable=3") || !strings.Contains(out, "3 failed in wave 1 of 3 hosts: more than --max-fail 2") {
		t.Errorf("--max-fail 2: exit %d\n%s", code, out)
	}
}

// The sink writes plain lines to a pipe or file, colours and a status line only on a tty.
func TestSinkPlainWhenNotATerminal(t *testing.T) {
	var mu sync.Mutex
	var b strings.Builder
	s := &eventSink{out: lockedWriter{&mu, &b}, stage: map[string]string{}}
	s.startWave(1, 2, 3, "wave 1/2: 1 hosts: a")
	s.emit(tasks.Event{Host: "a", Stage: "apply", Status: tasks.StatusChanged, Message: "set x"})
	s.hostDone("a", outcomeChanged)
	s.finish()
	if strings.Contains(b.String(), "\x1b") || !strings.Contains(b.String(), "a        apply:  changed set x") {
		t.Errorf("plain output:\n%q", b.String())
	}
	b.Reset()
	s = &eventSink{out: lockedWriter{&mu, &b}, stage: map[string]string{}, tty: true, color: true, width: 80}
	s.startWave(1, 1, 1, "wave 1/1: 1 hosts: a")
	s.hostStarted("a")
	s.emit(tasks.Event{Host: "a", Stage: "verify", Status: tasks.StatusFailed, Message: "no"})
	if !strings.Contains(b.String(), "\x1b[31mfailed\x1b[0m") || !strings.Contains(b.String(), "[wave 1/1] 0/1 done, 0 failed, 1 running  a:verify") {
		t.Errorf("terminal output:\n%q", b.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// --step asks before each wave; "n" stops with every host untouched. --yes never asks.
func TestStepAsksBeforeEachWave(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.yml")
	os.WriteFile(inv, []byte("all:\n  vars:\n    ansible_host: 127.0.0.1\n    ansible_port: 1\n    haltfleet_halt: false\n  hosts:\n    a:\n    b:\n"), 0o644)
	old := Stdin
	defer func() { Stdin = old }()
	Stdin = strings.NewReader("n\n")
	code, out := haltfleet(t, "up", "-i", inv, "-F", "none", "--step", "--serial", "1", "--journal", filepath.Join(dir, "j"))
	if code != exitError || !strings.Contains(out, "Start wave 1/2 (1 hosts: a)? [y]es/[n]o/[a]ll: ") ||
		!strings.Contains(out, "rollout stopped: declined wave 1 at --step") || strings.Count(out, "not started\n") != 2 {
		t.Errorf("--step, answer n: exit %d\n%s", code, out)
	}
	Stdin = strings.NewReader("")
	_, out = haltfleet(t, "up", "-i", inv, "-F", "none", "--step", "--yes", "--serial", "1", "--journal", filepath.Join(dir, "j"), "--timeout", "2s")
	if strings.Contains(out, "Start wave") {
		t.Errorf("--yes still asked:\n%s", out)
	}
}
