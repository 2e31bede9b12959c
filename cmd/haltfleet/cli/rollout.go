package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/haltfleet/haltfleet/rollout"
	"github.com/haltfleet/haltfleet/tasks"
)

// rolloutRun is one `haltfleet up`: hosts cut into waves, each wave worked on with
// --forks hosts at once, the journal written as hosts move on, the budget checked as
// hosts finish. Once it stops, no host is started; hosts in flight finish their Up.
type rolloutRun struct {
	fl      *fleet
	ef      *engineFlags
	rf      *rolloutFlags
	steps   []rollout.Step
	budget  rollout.Budget
	journal *rollout.Journal
	sink    *eventSink
	runID   string
	answers *bufio.Reader // Stdin, for --step

	rows    []hostResult
	results []tasks.UpResult
	hashes  []string
	halted  []bool // the journal says haltfleet halted the host and nothing logged in since

	mu      sync.Mutex
	stopped string // why no more hosts start ("" while running)
	failed  int    // failed or unreachable hosts of this run
	todo    int
}

func (ru *rolloutRun) stop(reason string) {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.stopped == "" {
		ru.stopped = reason
		ru.sink.note(tasks.StatusFailed, "stopping: %s; hosts not started stay untouched", reason)
	}
}

func (ru *rolloutRun) stopReason(ctx context.Context) string {
	select {
	case <-stopChan(ctx):
		ru.stop("interrupted")
	case <-ctx.Done():
		ru.stop("aborted")
	default:
	}
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.stopped
}

func (ru *rolloutRun) run(ctx context.Context) int {
	hosts := ru.fl.hosts
	ru.rows = make([]hostResult, len(hosts))
	ru.results = make([]tasks.UpResult, len(hosts))
	ru.hashes = make([]string, len(hosts))
	ru.halted = make([]bool, len(hosts))
	records := ru.journal.Records()
	states := rollout.States(records)
	resuming := !ru.rf.fresh && unfinished(records)
	runs := map[string]bool{}
	for _, r := range records {
		runs[r.RunID] = true
	}
	ru.fl.staleRun = func(id string) bool { return id != "" && id != ru.runID && runs[id] }
	if ru.journal.Torn {
		ru.sink.note(tasks.StatusSkipped, "journal %s: dropped a torn last line (the previous run was killed mid-write)", ru.journal.Path())
	}

	var todo []int
	var members []rollout.Member
	for i, h := range hosts {
		ru.rows[i] = hostResult{Host: h.Name, Outcome: outcomeSkipped, Detail: "not started"}
		if h.Settings.Ruleset != "" {
			if text, err := tasks.RenderRuleset(h); err == nil {
				ru.hashes[i] = rollout.HashRuleset(text)
			}
		}
		st := states[h.Name]
		ru.halted[i] = st.Halted
		// Halted hosts are never skipped: a rerun probes them (without logging in).
		if resuming && !h.Settings.Halt && st.Done(ru.hashes[i], false) {
			ru.rows[i].Detail = fmt.Sprintf("done by run %s (%s at %s, journal); --fresh works on it again",
				st.Last.RunID, st.Last.Stage, st.Last.Time.Local().Format("15:04:05"))
			continue
		}
		todo = append(todo, i)
		members = append(members, rollout.Member{Name: h.Name, Group: h.Settings.WaveGroup})
	}
	ru.todo = len(todo)
	planned, notes, err := rollout.Plan(members, ru.steps)
	if err != nil {
		return fail(err)
	}
	waves := make([][]int, len(planned))
	var sizes []string
	for w, wave := range planned {
		for _, k := range wave {
			waves[w] = append(waves[w], todo[k])
		}
		sizes = append(sizes, fmt.Sprint(len(wave)))
	}
	how := fmt.Sprintf("%d hosts in %d waves (%s), forks %d, max-fail %s per wave and run (stops when failures exceed it)",
		len(todo), len(waves), strings.Join(sizes, ", "), ru.ef.forks, ru.budget)
	if skipped := len(hosts) - len(todo); skipped > 0 {
		how += fmt.Sprintf("; resuming: %d hosts done by the unfinished run", skipped)
	}
	ru.sink.note(tasks.StatusStart, "rollout %s: %s; journal %s", ru.runID, how, ru.journal.Path())
	for _, n := range notes {
		ru.sink.note(tasks.StatusSkipped, "%s", n)
	}
	if err := ru.journal.Append(rollout.Record{Stage: rollout.StageRunStart, RunID: ru.runID, Detail: how}); err != nil {
		return fail(err)
	}

	for w, wave := range waves {
		if ru.stopReason(ctx) != "" {
			break
		}
		if ru.rf.step && !ru.rf.yes && !ru.ask(w, len(waves), wave) {
			ru.stop(fmt.Sprintf("declined wave %d at --step", w+1))
			break
		}
		names := make([]string, len(wave))
		for k, i := range wave {
			names[k] = hosts[i].Name
		}
		ru.sink.startWave(w+1, len(waves), len(todo), fmt.Sprintf("wave %d/%d: %d hosts: %s", w+1, len(waves), len(wave), strings.Join(names, " ")))
		waveFailed := 0
		var waveMu sync.Mutex
		forEachUntil(ctx, len(wave), ru.ef.forks, func() bool { return ru.stopReason(ctx) != "" }, func(hctx context.Context, k int) {
			i := wave[k]
			out := ru.upOne(hctx, i)
			if out != outcomeFailed && out != outcomeUnreachable {
				return
			}
			waveMu.Lock()
			waveFailed++
			wf := waveFailed
			waveMu.Unlock()
			ru.mu.Lock()
			ru.failed++
			rf := ru.failed
			ru.mu.Unlock()
			switch {
			case w == 0 && len(waves) > 1:
				ru.stop(fmt.Sprintf("%s failed in the first wave (the canary)", hosts[i].Name))
			case ru.budget.Exceeded(wf, len(wave)):
				ru.stop(fmt.Sprintf("%d failed in wave %d of %d hosts: more than --max-fail %s", wf, w+1, len(wave), ru.budget))
			case ru.budget.Exceeded(rf, len(todo)):
				ru.stop(fmt.Sprintf("%d failed of %d hosts: more than --max-fail %s", rf, len(todo), ru.budget))
			}
		})
	}
	ru.sink.finish()
	stopped := ru.stopReason(ctx)
	end := rollout.RunComplete
	if stopped != "" {
		end = stopped
	} else if ru.failed > 0 {
		end = fmt.Sprintf("%d hosts failed", ru.failed)
	}
	if err := ru.journal.Append(rollout.Record{Stage: rollout.StageRunEnd, RunID: ru.runID, Detail: end}); err != nil {
		fmt.Fprintf(Stderr, "haltfleet: %v\n", err)
	}

	fmt.Fprintln(Stdout)
	printProbes(Stdout, ru.results)
	bad := printRecap(Stdout, ru.rows)
	if stopped != "" {
		fmt.Fprintf(Stdout, "rollout stopped: %s\n", stopped)
	}
	ru.sink.emit(tasks.Event{Stage: stageRollout, Status: map[bool]string{true: tasks.StatusOK, false: tasks.StatusFailed}[bad == 0 && stopped == ""],
		Message: "recap: " + recapCounts(ru.rows)})
	if bad > 0 || stopped != "" || ctx.Err() != nil {
		return exitError
	}
	return exitOK
}

// upOne runs upHost for hosts[i], journals its stages, fills its recap row and returns
// its outcome.
func (ru *rolloutRun) upOne(ctx context.Context, i int) string {
	h := ru.fl.hosts[i]
	hash := ru.hashes[i]
	record := func(stage, detail string) {
		if err := ru.journal.Append(rollout.Record{Host: h.Name, Stage: stage, RulesetSHA256: hash, RunID: ru.runID, Detail: detail}); err != nil {
			// A journal that cannot be written makes resuming unsafe: stop starting hosts.
			ru.stop(err.Error())
		}
	}
	record(rollout.StagePlanned, "")
	ru.sink.hostStarted(h.Name)
	emit := func(e tasks.Event) {
		if e.Status == tasks.StatusOK {
			switch e.Stage {
			case "apply":
				record(rollout.StageApplied, "")
			case "verify":
				record(rollout.StageVerified, "")
			case "halt":
				record(rollout.StageHalted, "")
			}
		}
		ru.sink.emit(e)
	}
	start := time.Now()
	res, err := upHost(ctx, ru.fl, h, ru.ef.options(), ru.runID, ru.halted[i], emit)
	ru.results[i] = res
	row := hostResult{Host: h.Name, Duration: time.Since(start), Changes: len(res.Changes), Err: err}
	switch {
	case err != nil:
		row.Outcome, row.Detail = failOutcome(err), err.Error()
		record(rollout.StageFailed, oneLine(err.Error()))
	case res.Halted:
		row.Outcome = outcomeHalted
		row.Detail = fmt.Sprintf("halted and probed in %s (SSH gone after %s, %d probes ok)",
			res.Elapsed.Round(100*time.Millisecond), res.Gone.Round(100*time.Millisecond), len(res.Probes))
		record(rollout.StageProbed, "")
	default:
		row.Outcome = outcomeOK
		if len(res.Changes) > 0 {
			row.Outcome = outcomeChanged
		}
		if len(res.Probes) > 0 {
			record(rollout.StageProbed, "")
		}
	}
	ru.rows[i] = row
	ru.sink.hostDone(h.Name, row.Outcome)
	return row.Outcome
}

// ask asks on Stdin whether to start wave w; "a" answers yes for every later wave.
func (ru *rolloutRun) ask(w, waves int, wave []int) bool {
	var names []string
	for _, i := range wave {
		names = append(names, ru.fl.hosts[i].Name)
	}
	ru.sink.finish()
	fmt.Fprintf(Stdout, "Start wave %d/%d (%d hosts: %s)? [y]es/[n]o/[a]ll: ", w+1, waves, len(wave), oneLine(strings.Join(names, " ")))
	if ru.answers == nil {
		ru.answers = bufio.NewReader(Stdin)
	}
	line, _ := ru.answers.ReadString('\n')
	ru.sink.mu.Lock()
	ru.sink.waves = waves
	ru.sink.mu.Unlock()
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	case "a", "all":
		ru.rf.yes = true
		return true
	}
	return false
}

// unfinished reports whether the journal's last run did not complete: then a rerun
// resumes it instead of starting over.
func unfinished(records []rollout.Record) bool {
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if r.Host == "" && r.Stage == rollout.StageRunEnd {
			return r.Detail != rollout.RunComplete
		}
		if r.Host == "" && r.Stage == rollout.StageRunStart {
			return true // started, never ended: killed
		}
	}
	return false
}
