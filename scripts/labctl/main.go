// Command labctl drives the VM lab by hand (build|up|down|status) until the CLI
// exposes `haltfleet lab`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/haltfleet/haltfleet/lab"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: labctl build|up|down|status [VARIANT|NAME=VARIANT...] | cycle NAME")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	cfg := lab.Config{Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...)
	}}
	if os.Args[1] != "cycle" {
		fws, err := lab.ParseFirewalls(os.Args[2:])
		if err != nil {
			fmt.Fprintln(os.Stderr, "labctl:", err)
			os.Exit(2)
		}
		cfg.Firewalls = fws
	}
	if n, err := strconv.Atoi(os.Getenv("LAB_PARALLEL")); err == nil {
		cfg.Parallel = n
	}
	if d := os.Getenv("LAB_STATE"); d != "" {
		cfg.StateDir = d
	}
	var err error
	switch os.Args[1] {
	case "build":
		var imgs []lab.Image
		imgs, err = lab.Build(ctx, cfg)
		for _, i := range imgs {
			fmt.Printf("%s\t%s\tbuilt=%v\t%s\n", i.Variant, i.Dir, i.Built, i.Took.Round(time.Second))
		}
	case "up":
		var l *lab.Lab
		l, err = lab.Up(ctx, cfg)
		if l != nil {
			for _, vm := range l.VMs {
				fmt.Printf("%s\t%s\tport=%d\tssh after %s\n", vm.Name, vm.Variant, vm.SSHPort, vm.TimeToSSH.Round(time.Second))
			}
			fmt.Println("inventory:", l.Inventory, " ssh -F", l.SSHConfig, "<host>")
		}
	case "down":
		err = lab.Down(ctx, cfg)
	case "status":
		var l *lab.Lab
		l, err = lab.Status(cfg)
		if l != nil {
			b, _ := json.MarshalIndent(l, "", "  ")
			fmt.Println(string(b))
		}
	case "cycle":
		var l *lab.Lab
		if l, err = lab.Open(cfg); err == nil {
			err = l.PowerCycle(ctx, strings.Join(os.Args[2:], ""))
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labctl:", err)
		os.Exit(1)
	}
}
