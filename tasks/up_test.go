package tasks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// withFacts makes Up/Plan see f instead of gathering.
func withFacts(t *testing.T, f Facts) {
	t.Helper()
	old := gatherFacts
	gatherFacts = func(ctx context.Context, r runner.Runner) (Facts, error) { return f, nil }
	t.Cleanup(func() { gatherFacts = old })
}

// upHost is a live Debian 12 systemd firewall as the fake models it.
func upHost(t *testing.T) (*fakeHost, Facts) {
	tc := armCases()[0] // systemd-ifupdown
	h := tc.host(t)
	h.sections["addrs"] = `[{"ifname":"eth0","addr_info":[{"local":"192.0.2.1","prefixlen":24,"valid_life_time":4294967295}]}]`
	h.respond = errDisconnectedAt("no-block halt")
	return h, tc.facts
}

type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

func (l *eventLog) has(stage, status string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.ev {
		if e.Stage == stage && e.Status == status {
			return true
		}
	}
	return false
}

func upInput(h *fakeHost, s inventory.Settings, log *eventLog, prober runner.Runner) UpInput {
	return UpInput{
		Host:      inventory.Host{Name: "fw1", Settings: s},
		Runner:    h,
		Reconnect: func(ctx context.Context) (runner.Runner, error) { return h, nil },
		Dial:      func(ctx context.Context) error { return errors.New("connection refused") },
		ProbeFrom: func(ctx context.Context, from string) (runner.Runner, error) { return prober, nil },
		Events:    log.add,
	}
}

func sentHalt(h *fakeHost) []string {
	var out []string
	for _, c := range h.commands() {
		if strings.Contains(c, ": > "+ArmFlag) || strings.Contains(c, "no-block halt") || strings.Contains(c, "shutdown -h") {
			out = append(out, c)
		}
	}
	return out
}

func TestUpVerifyFailureNeverHalts(t *testing.T) {
	for _, breakIt := range []struct {
		name string
		mod  func(h *fakeHost)
	}{
		{"idle self-test fails", func(h *fakeHost) { h.selftest = "selftest FAILED: oldroot still mounted\nexit=1" }},
		{"unknown teardown unit", func(h *fakeHost) {
			h.units = append(h.units, fakeUnit{"myfw.service", "{ path=/usr/sbin/iptables ; argv[]=/usr/sbin/iptables -F ; }", ""})
		}},
		{"dhcp address came back", func(h *fakeHost) {
			h.sections["addrs"] = `[{"ifname":"eth0","addr_info":[{"local":"192.0.2.9","prefixlen":24,"valid_life_time":3600}]}]`
		}},
	} {
		t.Run(breakIt.name, func(t *testing.T) {
			h, f := upHost(t)
			breakIt.mod(h)
			withFacts(t, f)
			log := &eventLog{}
			prober := newFakeHost("lan1")
			res, err := Up(context.Background(), upInput(h, inventory.Settings{Halt: true}, log, prober))
			if !errors.Is(err, ErrVerifyFailed) {
				t.Fatalf("Up = %v, want ErrVerifyFailed", err)
			}
			if halts := sentHalt(h); len(halts) > 0 {
				t.Fatalf("halt sent after failed verification: %q", halts)
			}
			if res.Halted || len(prober.commands()) > 0 || !log.has("verify", StatusFailed) || log.has("halt", StatusStart) {
				t.Errorf("result %+v, events %+v", res, log.ev)
			}
			if len(res.Report.Failed()) == 0 {
				t.Error("report lists no failed check")
			}
		})
	}
}

func TestUpHaltsProbesAndIsIdempotent(t *testing.T) {
	h, f := upHost(t)
	withFacts(t, f)
	prober := newFakeHost("lan1")
	prober.respond = func(c string) (runner.Result, error, bool) {
		if strings.Contains(c, "10.0.0.1 80") {
			return runner.Result{Stdout: []byte("succeeded\nrc=0\n")}, nil, true
		}
		return runner.Result{Stdout: []byte("timed out\nrc=1\n")}, nil, true
	}
	s := inventory.Settings{Halt: true, Probes: []inventory.Probe{
		{From: "lan1", To: "10.0.0.1:80", Proto: "tcp", Expect: "open"},
		{From: "lan1", To: "10.0.0.1:81", Proto: "tcp", Expect: "closed"},
	}}
	log := &eventLog{}
	res, err := Up(context.Background(), upInput(h, s, log, prober))
	if err != nil {
		t.Fatalf("Up: %v\n%+v", err, res.Report.Failed())
	}
	if !res.Halted || len(res.Changes) == 0 || len(res.Probes) != 2 || !res.Probes[0].OK || !res.Probes[1].OK || res.Elapsed <= 0 {
		t.Fatalf("result %+v", res)
	}
	if len(sentHalt(h)) != 1 {
		t.Fatalf("halts sent: %q", sentHalt(h))
	}
	for _, st := range []string{"facts", "plan", "apply", "verify", "halt", "probe"} {
		if !log.has(st, StatusOK) {
			t.Errorf("no %s ok event", st)
		}
	}

	// the same host still live and armed: a second Up changes nothing before the halt
	before := len(h.commands())
	res2, err := Up(context.Background(), upInput(h, s, &eventLog{}, prober))
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Changes) != 0 {
		t.Fatalf("second Up applied %d changes: %s", len(res2.Changes), renderPlan(res2.Changes))
	}
	for _, c := range h.commands()[before:] {
		if strings.HasPrefix(c, "UPLOAD") || c == "systemctl daemon-reload" || strings.Contains(c, "mount -t") {
			t.Errorf("second Up touched the host: %q", c)
		}
	}
}

func TestUpProbeFailureIsAnError(t *testing.T) {
	h, f := upHost(t)
	withFacts(t, f)
	prober := newFakeHost("lan1")
	prober.respond = func(string) (runner.Result, error, bool) {
		return runner.Result{Stdout: []byte("succeeded\nrc=0\n")}, nil, true
	}
	s := inventory.Settings{Halt: true, Probes: []inventory.Probe{{From: "lan1", To: "10.0.0.1:22", Proto: "tcp", Expect: "closed"}}}
	old := probeSettle
	probeSettle = 3 * time.Second
	t.Cleanup(func() { probeSettle = old })
	start := time.Now()
	res, err := Up(context.Background(), upInput(h, s, &eventLog{}, prober))
	if !errors.Is(err, ErrProbeFailed) || !res.Halted || res.Probes[0].OK {
		t.Fatalf("Up = %+v, %v", res, err)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("a failing probe was not retried while the host settles (done after %s)", took)
	}
}

// TestUpProbesSettle: a probe that fails while the halt is still in progress (the
// forwarding CPU busy with the shutdown) passes once the host settles, and all probes
// are judged from that one round.
func TestUpProbesSettle(t *testing.T) {
	h, f := upHost(t)
	withFacts(t, f)
	prober := newFakeHost("lan1")
	calls := 0
	prober.respond = func(c string) (runner.Result, error, bool) {
		calls++
		if calls <= 2 {
			return runner.Result{Stdout: []byte("timed out\nrc=1\n")}, nil, true
		}
		return runner.Result{Stdout: []byte("succeeded\nrc=0\n")}, nil, true
	}
	s := inventory.Settings{Halt: true, Probes: []inventory.Probe{{From: "lan1", To: "10.0.0.1:80", Proto: "tcp", Expect: "open"}}}
	log := &eventLog{}
	res, err := Up(context.Background(), upInput(h, s, log, prober))
	if err != nil || !res.Halted || len(res.Probes) != 1 || !res.Probes[0].OK {
		t.Fatalf("Up = %+v, %v", res, err)
	}
	if calls != 3 || !log.has("probe", StatusStart) {
		t.Errorf("want three rounds with a retry event, got %d probe calls", calls)
	}
}

func TestUpRefusedTouchesNothing(t *testing.T) {
	h, f := upHost(t)
	f.Container = "docker"
	withFacts(t, f)
	_, err := Up(context.Background(), upInput(h, inventory.Settings{Halt: true}, &eventLog{}, nil))
	if !errors.Is(err, ErrContainerExits) {
		t.Fatalf("got %v", err)
	}
	if len(h.commands()) != 0 {
		t.Errorf("refused host got commands: %q", h.commands())
	}
}

func TestPlanOnlyReads(t *testing.T) {
	h, f := upHost(t)
	withFacts(t, f)
	chs, err := Plan(context.Background(), upInput(h, inventory.Settings{Halt: true}, &eventLog{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) < 2 || chs[len(chs)-1].Kind != KindHalt {
		t.Fatalf("plan %s", renderPlan(chs))
	}
	for _, c := range h.commands() {
		if !strings.Contains(c, armSectionMark) {
			t.Errorf("plan ran %q", c)
		}
	}
}

func TestProbeHaltedOnlyProbes(t *testing.T) {
	h := newFakeHost("fw1")
	prober := newFakeHost("lan1")
	prober.respond = func(string) (runner.Result, error, bool) {
		return runner.Result{Stdout: []byte("no reply\nrc=1\n")}, nil, true
	}
	s := inventory.Settings{Halt: true, Probes: []inventory.Probe{{From: "lan1", To: "10.0.0.1:53", Proto: "udp", Expect: "closed"}}}
	res, err := ProbeHalted(context.Background(), upInput(h, s, &eventLog{}, prober))
	if err != nil || !res.Halted || len(res.Probes) != 1 || !res.Probes[0].OK {
		t.Fatalf("got %+v, %v", res, err)
	}
	if len(h.commands()) != 0 {
		t.Errorf("halted host was contacted: %q", h.commands())
	}
}

func TestVerifySysctlsAndAddrs(t *testing.T) {
	h := newFakeHost("fw1")
	// one grep -H over /proc/sys answers every key: "PATH:VALUE" per line
	h.sections["sysctls"] = "/proc/sys/net/ipv4/ip_forward:1\n/proc/sys/net/ipv4/ip_local_port_range:32768\t60999\n"
	s := inventory.Settings{Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "32768 60999"}}
	rep, err := Verify(context.Background(), h, Facts{Host: "fw1", Init: InitUnknown}, s, "")
	if err != nil || len(rep.Checks) != 2 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	h.sections["sysctls"] = "/proc/sys/net/ipv4/ip_forward:0\n/proc/sys/net/ipv4/ip_local_port_range:32768\t60999\n"
	rep, err = Verify(context.Background(), h, Facts{Host: "fw1", Init: InitUnknown}, s, "")
	if !errors.Is(err, ErrVerifyFailed) || len(rep.Failed()) != 1 || rep.Failed()[0].Name != "sysctl net.ipv4.ip_forward" {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if len(h.commands()) != 2 {
		t.Errorf("want one round trip per Verify, got %d", len(h.commands()))
	}
}

// TestUpStopBeforeHalt: a graceful stop lets the host finish apply and verify but no
// halt starts after it.
func TestUpStopBeforeHalt(t *testing.T) {
	h, f := upHost(t)
	withFacts(t, f)
	stop := make(chan struct{})
	close(stop)
	in := upInput(h, inventory.Settings{Halt: true}, &eventLog{}, nil)
	in.Stop = stop
	res, err := Up(context.Background(), in)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("want ErrStopped, got %v", err)
	}
	if res.Halted || len(sentHalt(h)) != 0 {
		t.Fatalf("halted after a stop: %q", sentHalt(h))
	}
	if len(res.Changes) == 0 || !res.Report.OK() {
		t.Fatalf("the apply and verify in progress should finish: %d changes, report %+v", len(res.Changes), res.Report)
	}
}
