package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/haltfleet/haltfleet/fleetlab"
)

// eachHost runs fn for every host, forks at a time, and joins the failures.
func eachHost(ctx context.Context, hosts []fleetlab.Host, forks int, fn func(ctx context.Context, h fleetlab.Host) error) error {
	sem := make(chan struct{}, max(forks, 1))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(ctx, h)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// floorGo connects to every host with x/crypto/ssh (the library haltfleet uses), runs
// `true` in one session and disconnects: the least any Go SSH tool can do per host.
func floorGo(ctx context.Context, f *fleetlab.Fleet, forks int) error {
	key, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return fmt.Errorf("%s: %w", f.KeyFile, err)
	}
	hostKeys, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		return err
	}
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys, Timeout: 10 * time.Second}
	return eachHost(ctx, f.Hosts, forks, func(ctx context.Context, h fleetlab.Host) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h.Addr, "22"))
		if err != nil {
			return fmt.Errorf("%s: dial: %w", h.Name, err)
		}
		defer conn.Close()
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		cc, chans, reqs, err := ssh.NewClientConn(conn, h.Addr+":22", cfg)
		if err != nil {
			return fmt.Errorf("%s: handshake: %w", h.Name, err)
		}
		c := ssh.NewClient(cc, chans, reqs)
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			return fmt.Errorf("%s: session: %w", h.Name, err)
		}
		defer s.Close()
		if err := s.Run("true"); err != nil {
			return fmt.Errorf("%s: true: %w", h.Name, err)
		}
		return nil
	})
}

// floorOpenSSH runs `ssh host true` for every host: one process, connection and session each.
func floorOpenSSH(ctx context.Context, f *fleetlab.Fleet, forks int) error {
	return eachHost(ctx, f.Hosts, forks, func(ctx context.Context, h fleetlab.Host) error {
		out, err := exec.CommandContext(ctx, "ssh", "-F", "none", "-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+f.KnownHosts,
			"-o", "ConnectTimeout=10", "-i", f.KeyFile, "root@"+h.Addr, "true").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: ssh: %w: %s", h.Name, err, tail(out, 500))
		}
		return nil
	})
}
