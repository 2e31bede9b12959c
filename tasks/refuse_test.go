package tasks

import (
	"errors"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/inventory"
)

func TestRefuse(t *testing.T) {
	ok := Facts{Host: "fw1", Arch: "amd64", Init: InitSystemd, Firewall: Firewall{Nft: "/usr/sbin/nft"}}
	mod := func(m func(*Facts)) Facts { f := ok; m(&f); return f }
	halt := inventory.Settings{Halt: true}
	dhcp := []Addr{{Iface: "eth0", CIDR: "192.0.2.10/24", ValidLft: 86400}}
	tests := []struct {
		name string
		f    Facts
		s    inventory.Settings
		opt  Options
		want []error // each must be found with errors.Is; nil = no refusal
	}{
		{"systemd vm parks", ok, halt, Options{}, nil},
		{"systemd container exits", mod(func(f *Facts) { f.Container = "lxc" }), halt, Options{}, []error{ErrContainerExits}},
		{"sysvinit container parks", mod(func(f *Facts) { f.Container, f.Init = "lxc", InitSysvinit }), halt, Options{}, nil},
		{"finite addresses refused", mod(func(f *Facts) { f.FiniteAddrs = dhcp }), halt, Options{}, []error{ErrFiniteAddrs}},
		{"finite addresses pinned by option", mod(func(f *Facts) { f.FiniteAddrs = dhcp }), halt, Options{PinAddresses: true}, nil},
		{"finite addresses pinned by inventory", mod(func(f *Facts) { f.FiniteAddrs = dhcp }), inventory.Settings{Halt: true, PinAddresses: true}, Options{}, nil},
		{"unknown init", mod(func(f *Facts) { f.Init = InitUnknown }), halt, Options{}, []error{ErrUnknownInit}},
		{"busybox needs experimental", mod(func(f *Facts) { f.Init = InitBusybox }), halt, Options{}, []error{ErrExperimentalInit}},
		{"busybox with experimental", mod(func(f *Facts) { f.Init = InitBusybox }), halt, Options{Experimental: true}, nil},
		{"no nft", mod(func(f *Facts) { f.Firewall.Nft = "" }), halt, Options{}, []error{ErrNoNft}},
		{"no idle init for arch", mod(func(f *Facts) { f.Arch = "mips" }), halt, Options{}, []error{ErrNoIdleInit}},
		{"sysvinit needs no idle init", mod(func(f *Facts) { f.Arch, f.Init = "mips", InitSysvinit }), halt, Options{}, nil},
		{"run noexec refuses nothing", mod(func(f *Facts) { f.RunNoexec = true }), halt, Options{}, nil},
		{"every reason at once", mod(func(f *Facts) { f.Container, f.FiniteAddrs, f.Firewall.Nft = "docker", dhcp, "" }), halt, Options{},
			[]error{ErrContainerExits, ErrFiniteAddrs, ErrNoNft}},
		{"no halt: container and dhcp are fine", mod(func(f *Facts) { f.Container, f.FiniteAddrs = "docker", dhcp }), inventory.Settings{}, Options{}, nil},
		{"no halt: nft still needed", mod(func(f *Facts) { f.Firewall.Nft, f.Init = "", InitUnknown }), inventory.Settings{}, Options{}, []error{ErrNoNft}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Refuse(tc.f, tc.s, tc.opt)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("not refused")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("%v: missing reason %v", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "fw1: refuse: ") {
				t.Errorf("error lacks host and stage: %v", err)
			}
		})
	}
}

func TestFiniteAddrsErrorNamesAddresses(t *testing.T) {
	err := Refuse(Facts{Host: "fw1", Arch: "amd64", Init: InitSysvinit, Firewall: Firewall{Nft: "nft"},
		FiniteAddrs: []Addr{{Iface: "eth0", CIDR: "192.0.2.10/24", ValidLft: 600}}}, inventory.Settings{Halt: true}, Options{})
	var fe *FiniteAddrsError
	if !errors.As(err, &fe) || len(fe.Addrs) != 1 || !strings.Contains(err.Error(), "192.0.2.10/24 on eth0") {
		t.Fatalf("got %v", err)
	}
}

func TestPlanPinQuotesAndShouts(t *testing.T) {
	f := Facts{FiniteAddrs: []Addr{{Iface: "eth0;reboot", CIDR: "192.0.2.10/24", ValidLft: 600}}}
	chs := PlanPin("fw1", f)
	if len(chs) != 1 {
		t.Fatalf("got %d changes", len(chs))
	}
	c := chs[0]
	want := "ip addr change 192.0.2.10/24 dev 'eth0;reboot' valid_lft forever preferred_lft forever"
	if c.Command != want || c.Kind != KindCommand || c.Stage != "arm" {
		t.Errorf("got %+v, want command %q", c, want)
	}
	if !strings.HasPrefix(c.Summary, "PIN ADDRESS") {
		t.Errorf("summary does not say it loudly: %q", c.Summary)
	}
}
