package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

func TestCanonsComputeOncePerKey(t *testing.T) {
	c := NewCanons()
	var calls atomic.Int32
	compute := func() ([]string, string, error) {
		calls.Add(1)
		return []string{"x"}, "text", nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			canon, text, err := c.get(context.Background(), "k", compute)
			if err != nil || len(canon) != 1 || text != "text" {
				t.Errorf("get = %v %q %v", canon, text, err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("20 hosts of one key computed %d times, want 1", n)
	}
	// An invalid ruleset is the key's: shared, not recomputed.
	bad := func() ([]string, string, error) {
		calls.Add(1)
		return nil, "", fmt.Errorf("%w: line 3", ErrRulesetInvalid)
	}
	for range 3 {
		if _, _, err := c.get(context.Background(), "bad", bad); !errors.Is(err, ErrRulesetInvalid) {
			t.Fatalf("want ErrRulesetInvalid, got %v", err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("invalid ruleset computed %d times in all, want 2", n)
	}
	// Any other failure is the computing host's: the next host computes on its own.
	flaky := func() ([]string, string, error) { calls.Add(1); return nil, "", errors.New("connection lost") }
	if _, _, err := c.get(context.Background(), "f", flaky); err == nil {
		t.Fatal("want the transport error")
	}
	if _, _, err := c.get(context.Background(), "f", compute); err != nil {
		t.Fatalf("a later host did not recompute: %v", err)
	}
	// A nil cache computes every time.
	var none *Canons
	before := calls.Load()
	none.get(context.Background(), "k", compute)
	none.get(context.Background(), "k", compute)
	if calls.Load()-before != 2 {
		t.Fatal("nil Canons cached")
	}
}

func TestSysctlProcPath(t *testing.T) {
	for key, want := range map[string]string{
		"net.ipv4.ip_forward":             "/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/5.forwarding": "/proc/sys/net/ipv4/conf/eth0.5/forwarding",
		"net/ipv4/conf/eth0.5/forwarding": "/proc/sys/net/ipv4/conf/eth0.5/forwarding",
		"net/ipv4/ip_local_port_range":    "/proc/sys/net/ipv4/ip_local_port_range",
	} {
		if got := sysctlProcPath(key); got != want {
			t.Errorf("%s: got %s, want %s", key, got, want)
		}
	}
	vals := sysctlValues([]string{"a.b", "a.bc", "gone"}, "/proc/sys/a/b:1\n/proc/sys/a/bc:x\ty\n/proc/sys/a/bc:second\n")
	if vals["a.b"] != "1" || vals["a.bc"] != "x\ty\nsecond" {
		t.Errorf("values: %q", vals)
	}
	if _, ok := vals["gone"]; ok {
		t.Error("a key with no line is missing, not empty")
	}
}

// tripCounter counts round trips; embedding keeps Privileged.
type tripCounter struct {
	*netnsRunner
	n atomic.Int32
}

func (c *tripCounter) Exec(ctx context.Context, cmd runner.Cmd) (runner.Result, error) {
	c.n.Add(1)
	return c.netnsRunner.Exec(ctx, cmd)
}

// TestReadStateNetns: on a real host (this machine, inside a namespace the test owns) the
// read is one round trip with facts, lock, live ruleset and sysctls; a second run is
// refused by the lock and told its holder; the desired ruleset is canonicalised once per
// key, so a second host of the same kind compares without a round trip of its own.
func TestReadStateNetns(t *testing.T) {
	r := &tripCounter{netnsRunner: newNetns(t)}
	ctx := context.Background()
	loadRuleset(t, r.netnsRunner, oldRuleset)
	spec := readSpec{lockID: "run-a", ruleset: true, sysctls: []string{"net.ipv4.ip_forward", "net.ipv4.ip_local_port_range"}}
	rd, err := readState(ctx, r, spec)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.n.Load(); n != 1 {
		t.Fatalf("read took %d round trips, want 1", n)
	}
	if rd.facts.Kernel == "" || rd.facts.Arch == "" {
		t.Errorf("facts missing from the combined read: %+v", rd.facts)
	}
	if _, err := lockResult("fw", rd.sec); err != nil {
		t.Fatalf("lock: %v", err)
	}
	vals := sysctlValues(spec.sysctls, rd.sec["sysctls"])
	if vals["net.ipv4.ip_forward"] == "" || len(strings.Fields(vals["net.ipv4.ip_local_port_range"])) != 2 {
		t.Errorf("sysctls read %q from %q", vals, rd.sec["sysctls"])
	}
	if !strings.Contains(rd.sec["ifaces"], "lo") {
		t.Errorf("interfaces: %q", rd.sec["ifaces"])
	}

	other, err := readState(ctx, r, readSpec{lockID: "run-b"})
	if err != nil {
		t.Fatal(err)
	}
	owner, lerr := lockResult("fw", other.sec)
	if !errors.Is(lerr, ErrLocked) || owner != "run-a" {
		t.Fatalf("second run: owner %q, %v", owner, lerr)
	}

	desired := testdataRuleset(t, "base.nft")
	canons := NewCanons()
	before := r.n.Load()
	c, err := compareRuleset(ctx, r, "fw", rd.facts, canons, desired, rd.sec)
	if err != nil || c.inSync {
		t.Fatalf("first host: in sync %v, %v", c.inSync, err)
	}
	if n := r.n.Load() - before; n != 1 {
		t.Fatalf("canonicalising took %d round trips, want 1", n)
	}
	before = r.n.Load()
	if c, err = compareRuleset(ctx, r, "fw2", rd.facts, canons, desired, rd.sec); err != nil || c.inSync {
		t.Fatalf("second host: in sync %v, %v", c.inSync, err)
	}
	if n := r.n.Load() - before; n != 0 {
		t.Fatalf("second host of the same key took %d round trips, want 0", n)
	}
	loadRuleset(t, r.netnsRunner, desired)
	rd, err = readState(ctx, r, readSpec{ruleset: true})
	if err != nil {
		t.Fatal(err)
	}
	before = r.n.Load()
	if c, err = compareRuleset(ctx, r, "fw", rd.facts, canons, desired, rd.sec); err != nil || !c.inSync {
		t.Fatalf("after loading desired: in sync %v, %v", c.inSync, err)
	}
	if n := r.n.Load() - before; n != 0 {
		t.Fatalf("cached compare took %d round trips", n)
	}
	// The persistence plan comes from the same read.
	ch, err := rulesetPlan(ctx, r, "fw", Facts{Distro: Distro{ID: "debian"}, Init: InitSysvinit}, canons, desired, rd.sec, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ch {
		if c.Kind == KindRuleset {
			t.Errorf("in-sync ruleset planned: %+v", c)
		}
	}
	t.Logf("persistence plan on this machine: %d changes", len(ch))
}

// TestCanonsClaim: the run's first host of a ruleset canonicalises it alongside its read;
// later hosts wait for what it publishes instead of loading the ruleset themselves.
func TestCanonsClaim(t *testing.T) {
	c := NewCanons()
	publish, ok := c.claim("table inet f {}\n")
	if !ok {
		t.Fatal("first claim refused")
	}
	if _, again := c.claim("table inet f {}\n"); again {
		t.Fatal("second claim of the same ruleset granted")
	}
	if _, other := c.claim("table inet g {}\n"); !other {
		t.Fatal("claim of another ruleset refused")
	}
	waited := make(chan error, 1)
	go func() { waited <- c.waitClaim(context.Background(), "table inet f {}\n") }()
	select {
	case err := <-waited:
		t.Fatalf("waitClaim returned before publish: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	publish("key-a", []string{"canon"}, "text", nil)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	canon, text, err := c.get(context.Background(), "key-a", func() ([]string, string, error) {
		t.Error("published key computed again")
		return nil, "", nil
	})
	if err != nil || len(canon) != 1 || text != "text" {
		t.Fatalf("get after publish: %v %q %v", canon, text, err)
	}
	// A host of another kind (other key) computes its own.
	computed := false
	c.get(context.Background(), "key-b", func() ([]string, string, error) { computed = true; return []string{"b"}, "", nil })
	if !computed {
		t.Fatal("a different key used the published form")
	}
	// A failed claim publishes nothing; waiters then compute.
	p2, _ := c.claim("table inet h {}\n")
	p2("key-h", nil, "", errors.New("connection lost"))
	computed = false
	c.get(context.Background(), "key-h", func() ([]string, string, error) { computed = true; return []string{"h"}, "", nil })
	if !computed {
		t.Fatal("a transport failure was published")
	}
}
