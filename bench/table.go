package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// versus pairs each haltfleet row with the Ansible row doing the same job.
var versus = map[string]string{HFFacts: AnsFacts, HFUp: AnsUp, HFUpRerun: AnsUpRerun}

// Floor is the faster of the two SSH floors of sr (0 when neither ran cleanly).
func (sr SizeRun) Floor() time.Duration {
	var best time.Duration
	for _, r := range sr.Results {
		if (r.Name == FloorGo || r.Name == FloorOpenSSH) && r.Err == "" && (best == 0 || r.Wall < best) {
			best = r.Wall
		}
	}
	return best
}

// Result returns the named result, if it ran.
func (sr SizeRun) Result(name string) (Result, bool) {
	for _, r := range sr.Results {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

// VsAnsible is r's wall time over its Ansible counterpart's (0 when there is none).
func (sr SizeRun) VsAnsible(r Result) float64 {
	a, ok := sr.Result(versus[r.Name])
	if !ok || a.Err != "" || r.Err != "" || r.Wall == 0 {
		return 0
	}
	return float64(r.Wall) / float64(a.Wall)
}

// PrintTable writes one fleet's results.
func PrintTable(w io.Writer, sr SizeRun) {
	fmt.Fprintf(w, "\nN=%d (%d hosts up in %s), forks %d, load before: %s\n", sr.N, sr.Hosts,
		sr.FleetUp.Round(time.Second), sr.Forks, sr.LoadAvg)
	if sr.Err != "" {
		fmt.Fprintf(w, "  fleet: %s\n", sr.Err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\twall\t× floor\t× ansible\tctl CPU\tpeak RSS\tconns/host\tsessions/host\tresult\t")
	floor := sr.Floor()
	for _, r := range sr.Results {
		xf, xa, rss, sess := "-", "-", "-", "-"
		if floor > 0 && r.Err == "" {
			xf = fmt.Sprintf("%.2f", float64(r.Wall)/float64(floor))
		}
		if v := sr.VsAnsible(r); v > 0 {
			xa = fmt.Sprintf("%.3f (%.1f× faster)", v, 1/v)
		}
		if r.RSSKiB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(r.RSSKiB)/1024)
		}
		if r.HasSessions {
			sess = count(r.Sessions, r.SessionsMax)
		}
		status := "ok"
		if r.Note != "" {
			status = r.Note
		}
		if r.Err != "" {
			status = "FAILED: " + firstLine(r.Err)
		} else if r.ExitCode != 0 {
			status += fmt.Sprintf(" (exit %d)", r.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, seconds(r.Wall), xf, xa, seconds(r.CPU), rss,
			count(r.Conns, r.ConnsMax), sess, status)
	}
	tw.Flush()
}

// PrintSummary checks the targets on every size that has the rows they need.
func PrintSummary(w io.Writer, rep *Report) {
	if rep == nil || len(rep.Sizes) == 0 {
		return
	}
	fmt.Fprintf(w, "\nSummary (%d CPUs, kernel %s, forks %d, one run per contender):\n", rep.CPUs, rep.Kernel, rep.Forks)
	for _, sr := range rep.Sizes {
		floor := sr.Floor()
		for _, c := range []struct {
			name  string
			check func() (string, bool, bool) // text, met, measurable
		}{
			{"up ≥ 10× faster than Ansible", func() (string, bool, bool) {
				r, ok := sr.Result(HFUp)
				v := sr.VsAnsible(r)
				if !ok || v == 0 {
					return "", false, false
				}
				return fmt.Sprintf("%.1f×", 1/v), 1/v >= 10, true
			}},
			{"facts ≤ 1.5× floor", underFloor(sr, HFFacts, floor)},
			{"audit ≤ 1.5× floor", underFloor(sr, HFAudit, floor)},
			{"peak RSS < 200 MiB", func() (string, bool, bool) {
				var mx int64
				for _, r := range sr.Results {
					mx = max(mx, r.RSSKiB)
				}
				return fmt.Sprintf("%.1f MiB", float64(mx)/1024), mx < 200*1024, mx > 0
			}},
		} {
			text, met, ok := c.check()
			if !ok {
				continue
			}
			verdict := "MET"
			if !met {
				verdict = "NOT MET"
			}
			fmt.Fprintf(w, "  N=%-4d %-30s %-12s %s\n", sr.N, c.name, text, verdict)
		}
	}
}

func underFloor(sr SizeRun, name string, floor time.Duration) func() (string, bool, bool) {
	return func() (string, bool, bool) {
		r, ok := sr.Result(name)
		if !ok || r.Err != "" || floor == 0 {
			return "", false, false
		}
		v := float64(r.Wall) / float64(floor)
		return fmt.Sprintf("%.2f×", v), v <= 1.5, true
	}
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func count(mean float64, mx int) string {
	if float64(mx) == mean {
		return fmt.Sprint(mx)
	}
	return fmt.Sprintf("%.1f (max %d)", mean, mx)
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
