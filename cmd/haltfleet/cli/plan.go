package cli

import (
	"context"
	"fmt"

	"github.com/haltfleet/haltfleet/tasks"
)

func runPlan(ctx context.Context, args []string) int {
	fs := newFlagSet("plan")
	var ef engineFlags
	ef.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fl, err := ef.open()
	if err != nil {
		return fail(err)
	}
	defer fl.Close()
	type planned struct {
		changes []tasks.Change
		err     error
	}
	plans := make([]planned, len(fl.hosts))
	forEach(ctx, len(fl.hosts), ef.forks, func(ctx context.Context, i int) {
		h := fl.hosts[i]
		r, err := fl.connect(ctx, h)
		if err != nil {
			plans[i].err = err
			return
		}
		defer fl.release(h, r)
		plans[i].changes, plans[i].err = tasks.Plan(ctx, tasks.UpInput{Host: *h, Runner: r, Options: ef.options(), Canons: fl.canons})
	})
	errs, changed := 0, 0
	for i, p := range plans {
		h := fl.hosts[i].Name
		switch {
		case p.err != nil:
			errs++
			fmt.Fprintf(Stdout, "== %s: error: %v\n\n", h, p.err)
		case len(p.changes) == 0:
			fmt.Fprintf(Stdout, "== %s: nothing to do\n\n", h)
		default:
			changed++
			fmt.Fprintf(Stdout, "== %s: %d changes\n", h, len(p.changes))
			for _, c := range p.changes {
				fmt.Fprintf(Stdout, "  ~ [%s] %s\n", changeItem(c), c.Summary)
				writeIndented(Stdout, changeDiff(c), "      ")
			}
			fmt.Fprintln(Stdout)
		}
	}
	fmt.Fprintf(Stdout, "plan: %d hosts, %d with changes, %d errors\n", len(plans), changed, errs)
	switch {
	case errs > 0 || ctx.Err() != nil:
		return exitError
	case changed > 0:
		return exitDiff
	}
	return exitOK
}
