package rollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Stages a host goes through in the journal, in order. Failed records a host that
// stopped with an error; a run's own records have no host.
const (
	StagePlanned  = "planned"  // the host's wave started: it may be touched from now on
	StageApplied  = "applied"  // every change applied (the ruleset confirmed)
	StageVerified = "verified" // read back before any halt: in sync
	StageHalted   = "halted"   // SSH gone after the halt
	StageProbed   = "probed"   // every outside probe held
	StageFailed   = "failed"   // stopped with an error (Detail)
	StageRunStart = "run-start"
	StageRunEnd   = "run-end" // Detail: "complete" or why the run stopped
)

// RunComplete is the Detail of a run-end record for a run that reached every host.
const RunComplete = "complete"

// ErrBusy: another controller holds the journal, so it is rolling out this inventory.
var ErrBusy = errors.New("another haltfleet run holds the journal")

// Record is one journal line.
type Record struct {
	Host          string    `json:"host,omitempty"`
	Stage         string    `json:"stage"`
	RulesetSHA256 string    `json:"ruleset_sha256,omitempty"`
	RunID         string    `json:"run_id"`
	Time          time.Time `json:"time"`
	Detail        string    `json:"detail,omitempty"`
}

// Journal is an append-only NDJSON file, locked for one controller at a time. Every
// record is fsynced before Append returns, so a controller killed at any moment leaves
// at most a torn last line, which Open drops.
type Journal struct {
	mu      sync.Mutex
	f       *os.File
	path    string
	records []Record
	// Torn says Open dropped an incomplete last line (the previous run was killed mid-write).
	Torn bool
}

// DefaultPath is $XDG_STATE_HOME/haltfleet/<sha256 of the absolute inventory path>/journal.ndjson
// (XDG_STATE_HOME defaults to ~/.local/state): not next to the inventory, which may be read-only.
func DefaultPath(inventory string) (string, error) {
	abs, err := filepath.Abs(inventory)
	if err != nil {
		return "", err
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("journal: no XDG_STATE_HOME and no home directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(base, "haltfleet", hex.EncodeToString(sum[:]), "journal.ndjson"), nil
}

// HashRuleset is the hash journal records carry for a rendered ruleset ("" stays "").
func HashRuleset(text string) string {
	if text == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Open opens (creating 0600 in a 0700 directory) and locks the journal at path and reads
// it. It returns ErrBusy at once when another process holds it.
func Open(path string) (*Journal, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal %s: %w", path, ErrBusy)
		}
		return nil, fmt.Errorf("journal %s: lock: %w", path, err)
	}
	j := &Journal{f: f, path: path}
	if err := j.load(); err != nil {
		f.Close()
		return nil, err
	}
	if d, err := os.Open(dir); err == nil { // make the new file's name durable too
		_ = d.Sync()
		d.Close()
	}
	return j, nil
}

// load reads every complete line; an incomplete last line is cut off so the next
// append starts on a line of its own. A bad line in the middle is an error: that is
// not a kill, it is a damaged file.
func (j *Journal) load() error {
	b, err := io.ReadAll(j.f)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	end := bytes.LastIndexByte(b, '\n') + 1
	if end < len(b) {
		j.Torn = true
		if err := j.f.Truncate(int64(end)); err != nil {
			return fmt.Errorf("journal %s: drop torn line: %w", j.path, err)
		}
	}
	for n, line := range bytes.Split(b[:end], []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			// A kill can tear a line only at the end; a torn line followed by more
			// records means the file was damaged otherwise.
			return fmt.Errorf("journal %s:%d: %w", j.path, n+1, err)
		}
		j.records = append(j.records, r)
	}
	if _, err := j.f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Path is where the journal lives.
func (j *Journal) Path() string { return j.path }

// Records returns every record read or appended.
func (j *Journal) Records() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Record(nil), j.records...)
}

// Append writes r as one line and fsyncs it; Time is set when zero.
func (j *Journal) Append(r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.path, err)
	}
	j.records = append(j.records, r)
	return nil
}

// Close releases the lock.
func (j *Journal) Close() error { return j.f.Close() }

// HostState is what the journal knows about one host.
type HostState struct {
	// Last is the host's latest record of an unfinished run ("" Stage when the last run
	// completed or the host was never journalled): what a rerun resumes from.
	Last Record
	// Halted: no applied or verified record followed the latest halted one (planned,
	// probed and failed do not log in). Such a host is probed, not logged into.
	Halted bool
	// HaltedRun is the run that halted it.
	HaltedRun string
}

// Done reports whether the unfinished run left the host finished for a ruleset hash.
func (s HostState) Done(hash string, halt bool) bool {
	if s.Last.RulesetSHA256 != hash {
		return false
	}
	switch s.Last.Stage {
	case StageProbed:
		return true
	case StageVerified:
		return !halt
	}
	return false
}

// States folds records into per-host state. Resume information covers only the runs
// after the last complete one: once a run reached every host, the next run starts over.
func States(records []Record) map[string]HostState {
	from := 0
	for i, r := range records {
		if r.Host == "" && r.Stage == StageRunEnd && r.Detail == RunComplete {
			from = i + 1
		}
	}
	out := map[string]HostState{}
	for i, r := range records {
		if r.Host == "" {
			continue
		}
		s := out[r.Host]
		switch r.Stage {
		case StageHalted:
			s.Halted, s.HaltedRun = true, r.RunID
		case StageApplied, StageVerified:
			// only a host that was logged into again can have stopped being halted
			s.Halted, s.HaltedRun = false, ""
		}
		if i >= from {
			s.Last = r
		}
		out[r.Host] = s
	}
	return out
}

// Read returns the records of the journal at path without locking it (audit reads while
// up may be appending): a missing file is empty, a torn or bad line is skipped.
func Read(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []Record
	for _, line := range bytes.Split(b, []byte("\n")) {
		var r Record
		if json.Unmarshal(line, &r) == nil && r.Stage != "" {
			out = append(out, r)
		}
	}
	return out, nil
}
