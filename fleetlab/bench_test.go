package fleetlab_test

import (
	"bufio"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/fleetlab"
	"github.com/haltfleet/haltfleet/internal/testenv"
)

// BenchmarkUpDown measures a whole fleet's life: Up until every sshd answers, the
// memory it holds, and Down. Sizes come from FLEETLAB_BENCH_N (default "50"), e.g.
//
//	FLEETLAB_BENCH_N=50,200,500 go test -run '^$' -bench UpDown -benchtime 1x ./fleetlab/
func BenchmarkUpDown(b *testing.B) {
	testenv.NeedRoot(b)
	testenv.NeedCommand(b, "mmdebstrap", "ip", "nsenter", "/usr/sbin/sshd")
	sizes := os.Getenv("FLEETLAB_BENCH_N")
	if sizes == "" {
		sizes = "50"
	}
	if _, err := fleetlab.Build(context.Background(), fleetlab.Config{}); err != nil {
		b.Fatal(err)
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			b.Fatalf("FLEETLAB_BENCH_N: %v", err)
		}
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				upDown(b, n)
			}
		})
	}
}

func upDown(b *testing.B, n int) {
	cfg := fleetlab.Config{N: n, StateDir: filepath.Join(b.TempDir(), "fleet"), Prefix: "hfb", Slot: 6,
		Parallel: parallel(), Logf: b.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	defer func() { _ = fleetlab.Down(context.Background(), cfg) }()
	before := usedMiB()
	start := time.Now()
	f, err := fleetlab.Up(ctx, cfg)
	if err != nil {
		b.Fatalf("Up: %v", err)
	}
	up := time.Since(start)
	time.Sleep(3 * time.Second) // let the last boots' rc scripts finish
	after := usedMiB()
	var slowest time.Duration
	for _, h := range f.Hosts {
		slowest = max(slowest, h.TimeToSSH)
	}
	pss := fleetPSS("HALTFLEET_FLEET=" + cfg.Prefix)
	start = time.Now()
	if err := fleetlab.Down(ctx, cfg); err != nil {
		b.Fatalf("Down: %v", err)
	}
	down := time.Since(start)
	b.ReportMetric(up.Seconds(), "s-up")
	b.ReportMetric(slowest.Seconds(), "s-slowest-host")
	b.ReportMetric(down.Seconds(), "s-down")
	b.ReportMetric(float64(after-before), "MiB-used")
	b.ReportMetric(float64(after-before)/float64(n), "MiB/host")
	b.ReportMetric(pss/1024, "MiB-pss")
	b.Logf("N=%d Parallel=%s: all sshd up %s (slowest host %s), used MiB %d -> %d, fleet PSS %.0f MiB, down %s",
		n, cmp.Or(os.Getenv("FLEETLAB_BENCH_PARALLEL"), "default"), up.Round(time.Millisecond), slowest.Round(time.Millisecond), before, after, pss/1024, down.Round(time.Millisecond))
}

func parallel() int {
	p, _ := strconv.Atoi(os.Getenv("FLEETLAB_BENCH_PARALLEL"))
	return p
}

// usedMiB is what free(1) calls used: total minus available.
func usedMiB() int {
	fh, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer fh.Close()
	v := map[string]int{}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 {
			v[strings.TrimSuffix(f[0], ":")], _ = strconv.Atoi(f[1])
		}
	}
	return (v["MemTotal"] - v["MemAvailable"]) / 1024
}

// fleetPSS sums the proportional set size (KiB) of every process in the fleet's PID
// namespaces: the hosts' inits carry the marker, their descendants share the pid ns.
func fleetPSS(marker string) float64 {
	ents, _ := os.ReadDir("/proc")
	pidns := map[string]bool{}
	var pids []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		pids = append(pids, e.Name())
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if strings.Contains(string(env), marker+"\x00") {
			if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil {
				pidns[ns] = true
			}
		}
	}
	var total float64
	for _, p := range pids {
		ns, err := os.Readlink("/proc/" + p + "/ns/pid")
		if err != nil || !pidns[ns] {
			continue
		}
		b, _ := os.ReadFile("/proc/" + p + "/smaps_rollup")
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				v, _ := strconv.ParseFloat(f[1], 64)
				total += v
			}
		}
	}
	return total
}
