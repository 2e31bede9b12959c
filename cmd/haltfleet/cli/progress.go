package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/haltfleet/haltfleet/tasks"
)

// eventSink renders progress: plain lines when Stdout is not a terminal; on a terminal,
// coloured lines plus a status line (wave, counts, each in-flight host's stage) redrawn
// at the bottom. With --events it also writes every event as one NDJSON line.
type eventSink struct {
	mu     sync.Mutex
	out    io.Writer // nil when quiet
	tty    bool
	color  bool
	width  int
	ndjson *json.Encoder
	file   *os.File
	runID  string

	wave, waves        int
	stage              map[string]string // in-flight host → stage
	done, failed, todo int
	statusShown        bool
}

// eventLine is one NDJSON record: a tasks.Event plus where in the rollout it happened.
type eventLine struct {
	tasks.Event
	RunID string `json:"run_id,omitempty"`
	Wave  int    `json:"wave,omitempty"`
}

// Stages of the rollout itself (tasks.Event.Stage for events without a host).
const (
	stageWave    = "wave"
	stageRollout = "rollout"
	stageResult  = "result"
)

func (ef *engineFlags) sink() (*eventSink, error) {
	s := &eventSink{stage: map[string]string{}, width: 100}
	if f, ok := Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		s.tty = true
		s.color = os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			s.width = w
		}
	}
	if !ef.quiet {
		s.out = Stdout
	}
	if ef.events != "" {
		f, err := os.OpenFile(ef.events, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, err
		}
		s.file, s.ndjson = f, json.NewEncoder(f)
	}
	return s, nil
}

// emit is the tasks.Event callback: hosts call it concurrently.
func (s *eventSink) emit(e tasks.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if s.ndjson != nil {
		_ = s.ndjson.Encode(eventLine{Event: e, RunID: s.runID, Wave: s.wave})
	}
	if e.Host != "" && e.Stage != stageResult {
		s.stage[e.Host] = e.Stage
	}
	if s.out == nil || e.Status == tasks.StatusStart && e.Host != "" {
		s.redraw()
		return
	}
	var line string
	if e.Host == "" {
		line = fmt.Sprintf("%s %s", e.Time.Format("15:04:05"), s.paint(e.Status, "== "+oneLine(e.Message)))
	} else {
		line = fmt.Sprintf("%s %-8s %-7s %s", e.Time.Format("15:04:05"), e.Host, e.Stage+":",
			s.paint(e.Status, e.Status)+" "+oneLine(e.Message))
	}
	s.clearStatus()
	fmt.Fprintln(s.out, line)
	s.redraw()
}

// hostStarted, hostDone and startWave feed the status line.
func (s *eventSink) hostStarted(host string) {
	s.mu.Lock()
	s.stage[host] = "connect"
	s.mu.Unlock()
}

func (s *eventSink) hostDone(host, outcome string) {
	s.mu.Lock()
	delete(s.stage, host)
	s.done++
	if outcome == outcomeFailed || outcome == outcomeUnreachable {
		s.failed++
	}
	s.mu.Unlock()
	s.emit(tasks.Event{Host: host, Stage: stageResult, Status: outcome})
}

func (s *eventSink) startWave(w, waves, todo int, msg string) {
	s.mu.Lock()
	s.wave, s.waves, s.todo = w, waves, todo
	s.mu.Unlock()
	s.emit(tasks.Event{Stage: stageWave, Status: tasks.StatusStart, Message: msg})
}

// note is a rollout-level line (plan, budget, stop).
func (s *eventSink) note(status, format string, args ...any) {
	s.emit(tasks.Event{Stage: stageRollout, Status: status, Message: fmt.Sprintf(format, args...)})
}

// paint colours text by status, on a colour terminal only.
func (s *eventSink) paint(status, text string) string {
	if !s.color {
		return text
	}
	code := map[string]string{tasks.StatusOK: "32", tasks.StatusChanged: "33", tasks.StatusFailed: "31",
		tasks.StatusSkipped: "36", tasks.StatusStart: "1", outcomeHalted: "35", outcomeUnreachable: "31"}[status]
	if code == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s *eventSink) clearStatus() {
	if s.statusShown {
		fmt.Fprint(s.out, "\r\x1b[K")
		s.statusShown = false
	}
}

// redraw writes the status line on a terminal (never into a pipe or file).
func (s *eventSink) redraw() {
	if !s.tty || s.out == nil || s.waves == 0 {
		return
	}
	hosts := make([]string, 0, len(s.stage))
	for h, st := range s.stage {
		hosts = append(hosts, h+":"+st)
	}
	sort.Strings(hosts)
	line := fmt.Sprintf("[wave %d/%d] %d/%d done, %d failed, %d running  %s",
		s.wave, s.waves, s.done, s.todo, s.failed, len(s.stage), strings.Join(hosts, " "))
	if len(line) > s.width-1 {
		line = line[:s.width-4] + "..."
	}
	fmt.Fprint(s.out, "\r\x1b[K"+line)
	s.statusShown = true
}

// finish removes the status line before the recap.
func (s *eventSink) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != nil {
		s.clearStatus()
	}
	s.waves = 0
}

func (s *eventSink) close() {
	if s.file != nil {
		s.file.Close()
	}
}
