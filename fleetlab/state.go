package fleetlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Fleet is a running (or recorded) fleet, as saved in StateDir.
type Fleet struct {
	StateDir   string        `json:"state_dir"`
	Prefix     string        `json:"prefix"`
	Slot       int           `json:"slot"`
	N          int           `json:"n"`
	Lower      string        `json:"lower"`       // shared rootfs (overlay lower dir)
	KeyFile    string        `json:"key_file"`    // private key for root and hf on every host
	KnownHosts string        `json:"known_hosts"` // every host's ed25519 key, by address
	Inventory  string        `json:"inventory"`   // hosts.yml, group "fleet"
	Started    time.Time     `json:"started"`
	Took       time.Duration `json:"took"` // Up: start to every sshd answering
	Hosts      []Host        `json:"-"`    // one file each under hosts/
}

// Host is one fleet member. Its file is written before any of its resources exist, so
// Down finds everything an interrupted Up made.
type Host struct {
	Name      string        `json:"name"` // h001…
	Addr      string        `json:"addr"` // eth0, inside the fleet's /20
	NS        string        `json:"ns"`   // network namespace (/run/netns/NS)
	InitPID   int           `json:"init_pid"`
	Dir       string        `json:"dir"`      // upper/, work/, mnt/, console.log
	HostKey   string        `json:"host_key"` // "ssh-ed25519 AAAA…"
	TimeToSSH time.Duration `json:"time_to_ssh"`
	Running   bool          `json:"-"` // init alive; filled by Status
}

// ErrNoFleet means StateDir holds no recorded fleet.
var ErrNoFleet = errors.New("no fleet is up")

func fleetPath(dir string) string { return filepath.Join(dir, "fleet.json") }
func hostsDir(dir string) string  { return filepath.Join(dir, "hosts") }
func hostPath(dir string) string  { return filepath.Join(dir, "host.json") }

// writeJSON replaces path atomically, so a reader (or a Down after a crash) never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (f *Fleet) save() error { return writeJSON(fleetPath(f.StateDir), f) }

func (h *Host) save() error { return writeJSON(hostPath(h.Dir), h) }

// open loads the fleet record and every host record of dir.
func open(dir string) (*Fleet, error) {
	b, err := os.ReadFile(fleetPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fleetlab: %s: %w", dir, ErrNoFleet)
	}
	if err != nil {
		return nil, fmt.Errorf("fleetlab: open state: %w", err)
	}
	var f Fleet
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("fleetlab: parse %s: %w", fleetPath(dir), err)
	}
	f.Hosts, err = loadHosts(dir)
	return &f, err
}

func loadHosts(dir string) ([]Host, error) {
	ents, err := os.ReadDir(hostsDir(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleetlab: hosts: %w", err)
	}
	var hosts []Host
	for _, e := range ents {
		b, err := os.ReadFile(hostPath(filepath.Join(hostsDir(dir), e.Name())))
		if errors.Is(err, os.ErrNotExist) {
			continue // directory made, record not yet: nothing else exists either
		}
		if err != nil {
			return hosts, fmt.Errorf("fleetlab: %s: %w", e.Name(), err)
		}
		var h Host
		if err := json.Unmarshal(b, &h); err != nil {
			return hosts, fmt.Errorf("fleetlab: %s: parse: %w", e.Name(), err)
		}
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	return hosts, nil
}

// Status loads the recorded fleet and checks which hosts' init is alive.
func Status(cfg Config) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f, err := open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	for i := range f.Hosts {
		f.Hosts[i].Running = ours(f.Hosts[i].InitPID, f.Prefix)
	}
	return f, nil
}
