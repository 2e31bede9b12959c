// Command haltfleet-bench measures haltfleet against the SSH floor and Ansible on fleetlab
// fleets of several sizes and prints one table per size (see docs/bench.md):
//
//	go run ./bench/cmd/haltfleet-bench -n 50,200,500 -forks 50
//
// Ctrl-C (or SIGTERM) stops the measurement and still takes the fleet down; further
// signals are ignored until it is gone. A fleet left by a killed run is swept at the start.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/haltfleet/haltfleet/bench"
	"github.com/haltfleet/haltfleet/cmd/haltfleet/cli"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bench.ProfiledArg {
		os.Exit(profiled(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	sizes := flag.String("n", "50,200,500", "fleet sizes, comma-separated")
	forks := flag.Int("forks", 50, "concurrency of every contender (haltfleet --forks, Ansible forks, floor)")
	only := flag.String("only", "", "comma-separated contenders to run (default all): "+strings.Join(bench.Names(), ","))
	hf := flag.String("haltfleet", "", "haltfleet binary (default: go build ./cmd/haltfleet into the work dir)")
	work := flag.String("work", "/var/tmp/haltfleet-bench", "logs, Ansible files, profiles and results.json")
	out := flag.String("json", "", "results file (default WORK/results.json)")
	cache := flag.String("cache", "/var/cache/haltfleet-bench", "bench image cache (fleetlab's image plus python3)")
	state := flag.String("state", "/var/lib/haltfleet-bench", "fleet state directory")
	prefix := flag.String("prefix", "hfs", "fleetlab namespace prefix")
	slot := flag.Int("slot", 11, "fleetlab address slot (0..15)")
	parallel := flag.Int("parallel", 16, "hosts booted at once")
	cpuprofile := flag.Bool("cpuprofile", false, "run haltfleet under a CPU profile (WORK/nN/CONTENDER.pprof); RSS then includes the profiler")
	quiet := flag.Bool("q", false, "no progress lines on stderr")
	keep := flag.Bool("keep", false, "leave the last fleet up (to profile by hand); the next run takes it down")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "haltfleet-bench: unexpected arguments %q\n", flag.Args())
		return 64
	}

	cfg := bench.Config{Forks: *forks, WorkDir: *work, CacheDir: *cache, StateDir: *state,
		Prefix: *prefix, Slot: *slot, Parallel: *parallel, Keep: *keep, Out: os.Stdout, Only: map[string]bool{}}
	if !*quiet {
		cfg.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: -n: bad size %q\n", s)
			return 64
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	known := map[string]bool{}
	for _, n := range bench.Names() {
		known[n] = true
	}
	for _, o := range strings.Split(*only, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if !known[o] {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: -only: unknown contender %q (have %s)\n", o, strings.Join(bench.Names(), ","))
			return 64
		}
		cfg.Only[o] = true
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nhaltfleet-bench: %v: stopping, taking the fleet down (further signals are ignored)\n", s)
		cancel()
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: %v ignored: still taking the fleet down\n", s)
		}
	}()

	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "haltfleet-bench: %v\n", err)
		return 1
	}
	cfg.Haltfleet = *hf
	if cfg.Haltfleet == "" {
		cfg.Haltfleet = filepath.Join(cfg.WorkDir, "haltfleet")
		if b, err := exec.CommandContext(ctx, "go", "build", "-o", cfg.Haltfleet, "./cmd/haltfleet").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: go build ./cmd/haltfleet (run from the repository, or pass -haltfleet): %v\n%s", err, b)
			return 1
		}
	}
	if *cpuprofile {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: %v\n", err)
			return 1
		}
		cfg.Profile = self
	}

	rep, err := bench.Run(ctx, cfg)
	bench.PrintSummary(os.Stdout, rep)
	path := *out
	if path == "" {
		path = filepath.Join(cfg.WorkDir, "results.json")
	}
	if b, jerr := json.MarshalIndent(rep, "", "  "); jerr == nil {
		if werr := os.WriteFile(path, append(b, '\n'), 0o644); werr != nil {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: %v\n", werr)
		} else {
			fmt.Fprintf(os.Stderr, "haltfleet-bench: results in %s\n", path)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "haltfleet-bench: %v\n", err)
		return 1
	}
	return 0
}

// profiled runs haltfleet's CLI in this process under a CPU profile written to the file
// named by bench.ProfileEnv, with haltfleet's own signal handling.
func profiled(args []string) int {
	path := os.Getenv(bench.ProfileEnv)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "haltfleet-bench: profile: %v\n", err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "haltfleet-bench: profile: %v\n", err)
		return 1
	}
	code := cli.Run(args)
	pprof.StopCPUProfile()
	return code
}
