package fleetlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrExists means StateDir already records a fleet; Down it first.
var ErrExists = errors.New("a fleet is already recorded here")

// Up builds the image if needed and starts cfg.N hosts, cfg.Parallel at a time, each
// until its sshd answers. Every resource is recorded before it is created, so after
// an interrupted or failed Up, Down removes what was made. A host that fails does not
// stop the others; the error joins every failure and the Fleet lists the hosts up.
func Up(ctx context.Context, cfg Config) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lower, err := ensureImage(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if ns := namespaces(ctx, ourNS(cfg.Prefix)); len(ns) > 0 {
		return nil, fmt.Errorf("fleetlab: prefix %s: namespaces %v exist: %w", cfg.Prefix, ns, ErrExists)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("fleetlab: state: %w", err)
	}
	// Claim the directory: of two Ups racing for it, one gets ErrExists.
	claim, err := os.OpenFile(fleetPath(cfg.StateDir), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("fleetlab: %s: %w", cfg.StateDir, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("fleetlab: state: %w", err)
	}
	claim.Close()
	if err := os.MkdirAll(hostsDir(cfg.StateDir), 0o755); err != nil {
		return nil, fmt.Errorf("fleetlab: state: %w", err)
	}
	f := &Fleet{StateDir: cfg.StateDir, Prefix: cfg.Prefix, Slot: cfg.Slot, N: cfg.N, Lower: lower,
		KeyFile:    filepath.Join(cfg.StateDir, "id_ed25519"),
		KnownHosts: filepath.Join(cfg.StateDir, "known_hosts"),
		Inventory:  filepath.Join(cfg.StateDir, "hosts.yml"),
		Started:    time.Now()}
	if err := f.save(); err != nil {
		return nil, fmt.Errorf("fleetlab: state: %w", err)
	}
	priv, clientPub, err := newKey("haltfleet-fleet")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.KeyFile, priv, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.KeyFile+".pub", []byte(clientPub+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := setUpBridge(ctx, cfg.Prefix, cfg.Slot); err != nil {
		return nil, err
	}
	cfg.Logf("fleet %s: starting %d hosts, %d at a time", cfg.Prefix, cfg.N, cfg.Parallel)

	hosts := make([]*Host, cfg.N)
	errs := make([]error, cfg.N)
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i := 1; i <= cfg.N; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			hosts[i-1], errs[i-1] = startHost(ctx, cfg, f, lower, clientPub, i)
		}()
	}
	wg.Wait()
	f.Took = time.Since(f.Started)
	for _, h := range hosts {
		if h != nil && h.TimeToSSH > 0 {
			f.Hosts = append(f.Hosts, *h)
		}
	}
	if err := f.save(); err != nil {
		return f, fmt.Errorf("fleetlab: state: %w", err)
	}
	if err := f.writeClientFiles(f.Hosts); err != nil {
		return f, fmt.Errorf("fleetlab: client files: %w", err)
	}
	if ctx.Err() != nil {
		return f, fmt.Errorf("fleetlab: up interrupted with %d of %d hosts up: %w", len(f.Hosts), cfg.N, ctx.Err())
	}
	if err := errors.Join(errs...); err != nil {
		return f, err
	}
	cfg.Logf("fleet %s: %d hosts answer SSH after %s", cfg.Prefix, len(f.Hosts), f.Took.Round(time.Millisecond))
	return f, nil
}

// startHost records, wires and boots host i and waits for its sshd.
func startHost(ctx context.Context, cfg Config, f *Fleet, lower, clientPub string, i int) (*Host, error) {
	start := time.Now()
	h := &Host{Name: hostName(i), Addr: hostAddr(cfg.Slot, i).String(), NS: hostNS(cfg.Prefix, i),
		Dir: filepath.Join(hostsDir(cfg.StateDir), hostName(i))}
	fail := func(stage string, err error) (*Host, error) {
		return h, fmt.Errorf("%s: %s: %w", h.Name, stage, err)
	}
	hostKey, pub, err := newKey("root@" + h.Name)
	if err != nil {
		return fail("keys", err)
	}
	h.HostKey = pub
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return fail("state", err)
	}
	if err := h.save(); err != nil {
		return fail("state", err)
	}
	for _, d := range []string{"upper", "work", "mnt"} {
		if err := os.Mkdir(filepath.Join(h.Dir, d), 0o755); err != nil {
			return fail("state", err)
		}
	}
	if err := writeUpper(lower, filepath.Join(h.Dir, "upper"), hostFiles(h, hostKey, clientPub)); err != nil {
		return fail("files", err)
	}
	if err := plugHost(ctx, cfg.Prefix, h); err != nil {
		return fail("network", err)
	}
	exited, err := boot(h, lower, cfg.Prefix)
	if err != nil {
		return fail("boot", err)
	}
	if err := h.save(); err != nil {
		return fail("state", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := waitSSH(wctx, hostAddr(cfg.Slot, i), exited); err != nil {
		return fail("wait for sshd", err)
	}
	h.TimeToSSH = time.Since(start)
	if err := h.save(); err != nil {
		return fail("state", err)
	}
	return h, nil
}
