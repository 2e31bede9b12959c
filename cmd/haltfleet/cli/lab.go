package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/haltfleet/haltfleet/lab"
)

func runLab(ctx context.Context, args []string) int {
	fs := newFlagSet("lab")
	dir := fs.String("dir", "/var/lib/haltfleet-lab", "lab state `dir` (keys, disks, consoles, hosts.yml)")
	cache := fs.String("cache", "/var/cache/haltfleet-lab", "image cache `dir` (reused between runs)")
	fws := fs.String("fw", "systemd,sysvinit", "firewall VMs to boot: comma list of VARIANT or NAME=VARIANT, variants "+variantList()+" (or \"all\")")
	parallel := fs.Int("parallel", 2, "VMs booting at once (TCG boots are CPU-bound)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return exitUsage
	}
	cfg := lab.Config{StateDir: *dir, CacheDir: *cache, Parallel: *parallel,
		Logf: func(format string, a ...any) { fmt.Fprintf(Stderr, "lab: "+format+"\n", a...) }}
	if *fws != "all" {
		list, err := lab.ParseFirewalls(strings.Split(*fws, ","))
		if err != nil {
			return fail(err)
		}
		cfg.Firewalls = list
	}
	switch fs.Arg(0) {
	case "up":
		l, err := lab.Up(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(Stdout, "lab is up: %d firewall VMs\ninventory: %s\nnext: haltfleet up -i %s\n", len(l.VMs), l.Inventory, l.Inventory)
	case "down":
		if err := lab.Down(ctx, cfg); err != nil {
			return fail(err)
		}
		fmt.Fprintln(Stdout, "lab is down: VMs, namespaces, processes and state removed")
	case "status":
		l, err := lab.Status(cfg)
		if err != nil {
			return fail(err)
		}
		tw := tabwriter.NewWriter(Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VM\tVARIANT\tSSH\tPID")
		for _, vm := range l.VMs {
			fmt.Fprintf(tw, "%s\t%s\t127.0.0.1:%d\t%d\n", vm.Name, vm.Variant, vm.SSHPort, vm.PID)
		}
		tw.Flush()
		fmt.Fprintf(Stdout, "inventory: %s\n", l.Inventory)
	case "cycle":
		if fs.NArg() != 2 {
			fmt.Fprintln(Stderr, "Usage: haltfleet lab cycle FIREWALL")
			return exitUsage
		}
		l, err := lab.Status(cfg)
		if err != nil {
			return fail(err)
		}
		if err := l.PowerCycle(ctx, fs.Arg(1)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(Stdout, "%s power-cycled and answering SSH\n", fs.Arg(1))
	case "console":
		if fs.NArg() != 2 {
			fmt.Fprintln(Stderr, "Usage: haltfleet lab console FIREWALL")
			return exitUsage
		}
		l, err := lab.Status(cfg)
		if err != nil {
			return fail(err)
		}
		out, err := l.Console(fs.Arg(1))
		if err != nil {
			return fail(err)
		}
		fmt.Fprint(Stdout, out)
	default:
		fmt.Fprintf(Stderr, "haltfleet: lab: unknown action %q (up, down, status, cycle, console)\n", fs.Arg(0))
		return exitUsage
	}
	return exitOK
}

func variantList() string {
	var v []string
	for _, x := range lab.Variants {
		v = append(v, string(x))
	}
	return strings.Join(v, ", ")
}
