package rollout

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultPathUnderXDGState(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	p1, err := DefaultPath("inv/hosts.yml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("inv/hosts.yml")
	p2, _ := DefaultPath(abs)
	p3, _ := DefaultPath("other.yml")
	if p1 != p2 || p1 == p3 || !strings.HasPrefix(p1, filepath.Join(state, "haltfleet")+"/") || filepath.Base(p1) != "journal.ndjson" {
		t.Errorf("paths %s %s %s", p1, p2, p3)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", state)
	if p, _ := DefaultPath(abs); !strings.HasPrefix(p, filepath.Join(state, ".local", "state", "haltfleet")) {
		t.Errorf("without XDG_STATE_HOME: %s", p)
	}
}

func TestJournalAppendReopenModesAndLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "x", "journal.ndjson")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(Record{Host: "h1", Stage: StagePlanned, RunID: "r1"}); err != nil {
		t.Fatal(err)
	}
	j.Append(Record{Host: "h1", Stage: StageApplied, RunID: "r1", RulesetSHA256: "abc"})
	if _, err := Open(path); !errors.Is(err, ErrBusy) {
		t.Errorf("second Open while held: %v, want ErrBusy", err)
	}
	// flock is per open file description: another process is refused too.
	if _, err := exec.LookPath("flock"); err == nil {
		if out, err := exec.Command("flock", "-n", path, "true").CombinedOutput(); err == nil {
			t.Errorf("flock(1) got the lock while the journal is open: %s", out)
		}
	}
	j.Close()
	fi, _ := os.Stat(path)
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes: file %v dir %v", fi.Mode().Perm(), di.Mode().Perm())
	}
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rs := j.Records()
	if len(rs) != 2 || rs[1].Stage != StageApplied || rs[1].RulesetSHA256 != "abc" || rs[0].Time.IsZero() || j.Torn {
		t.Errorf("records after reopen: %+v torn=%v", rs, j.Torn)
	}
}

// A controller killed in the middle of a write leaves half a line: Open drops it and the
// next record starts on its own line.
func TestJournalTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.ndjson")
	good := `{"host":"h1","stage":"applied","run_id":"r1","time":"2025-01-01T00:00:00Z"}` + "\n"
	os.WriteFile(path, []byte(good+`{"host":"h1","stage":"verif`), 0o600)
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !j.Torn || len(j.Records()) != 1 {
		t.Fatalf("torn=%v records=%+v", j.Torn, j.Records())
	}
	j.Append(Record{Host: "h1", Stage: StageVerified, RunID: "r2"})
	j.Close()
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0]+"\n" != good || !strings.Contains(lines[1], `"stage":"verified"`) {
		t.Errorf("file after torn line + append:\n%s", b)
	}
	// Damage in the middle is not a kill: refuse, naming the line.
	os.WriteFile(path, []byte("garbage\n"+good), 0o600)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("damaged journal: %v", err)
	}
}

func TestStatesResumeAndHalted(t *testing.T) {
	rec := func(host, stage, run, hash string) Record {
		return Record{Host: host, Stage: stage, RunID: run, RulesetSHA256: hash}
	}
	old := []Record{
		{Stage: StageRunStart, RunID: "r0"},
		rec("fw1", StagePlanned, "r0", ""), rec("fw1", StageApplied, "r0", "h"), rec("fw1", StageVerified, "r0", "h"),
		rec("fw1", StageHalted, "r0", "h"), rec("fw1", StageProbed, "r0", "h"),
		rec("live1", StageVerified, "r0", "h"), rec("live1", StageProbed, "r0", "h"),
		{Stage: StageRunEnd, RunID: "r0", Detail: RunComplete},
	}
	st := States(old)
	if !st["fw1"].Halted || st["fw1"].HaltedRun != "r0" || st["fw1"].Last.Stage != "" {
		t.Errorf("after a complete run: fw1 %+v (halted, nothing to resume)", st["fw1"])
	}
	if st["live1"].Halted || st["live1"].Done("h", false) {
		t.Errorf("after a complete run a live host starts over: %+v", st["live1"])
	}
	// A killed run: live1 finished, live2 got as far as applied, live3 failed.
	killed := append(old, Record{Stage: StageRunStart, RunID: "r1"},
		rec("fw1", StageProbed, "r1", ""),
		rec("live1", StagePlanned, "r1", ""), rec("live1", StageApplied, "r1", "h2"), rec("live1", StageVerified, "r1", "h2"),
		rec("live2", StagePlanned, "r1", ""), rec("live2", StageApplied, "r1", "h2"),
		rec("live3", StagePlanned, "r1", ""), rec("live3", StageFailed, "r1", ""))
	st = States(killed)
	if !st["fw1"].Halted {
		t.Errorf("probing a halted host keeps it halted: %+v", st["fw1"])
	}
	if !st["live1"].Done("h2", false) || st["live1"].Done("h3", false) || st["live1"].Done("h2", true) {
		t.Errorf("live1 done for h2 only and only without halt: %+v", st["live1"])
	}
	if st["live2"].Done("h2", false) || st["live3"].Done("", false) {
		t.Errorf("unfinished hosts are not done: %+v %+v", st["live2"], st["live3"])
	}
	// A host halted and later logged into again (rebooted, up again) is no longer halted.
	again := append(killed, rec("fw1", StageApplied, "r2", "h"))
	if States(again)["fw1"].Halted {
		t.Errorf("fw1 applied after the halt still reads halted")
	}
}
