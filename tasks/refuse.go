package tasks

import (
	"errors"
	"fmt"
	"strings"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// Options are the CLI's switches that widen what haltfleet accepts.
type Options struct {
	// PinAddresses pins finite address lifetimes to forever instead of refusing.
	PinAddresses bool
	// Experimental allows init systems known only from source (busybox).
	Experimental bool
}

// Reasons a host cannot become a halted firewall. Refuse joins every reason that
// applies, so errors.Is finds each one.
var (
	// ErrContainerExits: systemd in a container exits at halt instead of parking, and
	// the runtime then destroys the namespace with its ruleset.
	ErrContainerExits = errors.New("systemd inside a container exits at halt and the namespace dies with it")
	// ErrFiniteAddrs: an address with a finite lifetime vanishes after the halt, since no
	// DHCP/RA daemon is left to renew it.
	ErrFiniteAddrs = errors.New("addresses with a finite lifetime would expire after the halt")
	// ErrUnknownInit: no recipe for this init system.
	ErrUnknownInit = errors.New("unknown init system")
	// ErrExperimentalInit: the recipe exists only from reading source, never run.
	ErrExperimentalInit = errors.New("init system supported only from source (needs --experimental)")
	// ErrNoIdleInit: systemd and runit park in haltfleet's idle init, shipped per arch.
	ErrNoIdleInit = errors.New("no idle init for this architecture")
	// ErrNoNft: the ruleset is applied and verified with nft.
	ErrNoNft = errors.New("nft not found")
)

// FiniteAddrsError lists the addresses behind ErrFiniteAddrs.
type FiniteAddrsError struct{ Addrs []Addr }

func (e *FiniteAddrsError) Error() string {
	var b strings.Builder
	for i, a := range e.Addrs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s on %s (valid %ds)", a.CIDR, a.Iface, a.ValidLft)
	}
	return ErrFiniteAddrs.Error() + ": " + b.String() + " (use pin addresses to keep them forever)"
}

func (e *FiniteAddrsError) Unwrap() error { return ErrFiniteAddrs }

// Refuse says why a host cannot be parked (nil when it can). A host with Halt=false
// only needs what applying and verifying the ruleset need.
//
// /run being noexec refuses nothing: on systemd the exitrd is a tmpfs haltfleet mounts
// itself (Verify checks its options), on runit the idle init lives on the root fs, and
// sysvinit/OpenRC execute nothing after the halt.
func Refuse(f Facts, s inventory.Settings, opt Options) error {
	var errs []error
	if f.Firewall.Nft == "" {
		errs = append(errs, ErrNoNft)
	}
	if !s.Halt {
		return joinRefusals(f.Host, errs)
	}
	switch f.Init {
	case InitSystemd:
		if f.Container != "" {
			errs = append(errs, fmt.Errorf("%w (%s)", ErrContainerExits, f.Container))
		}
	case InitSysvinit, InitOpenRC, InitRunit:
		// PID 1 stays in runlevel 0; in a container the namespace keeps filtering.
	case InitBusybox:
		if !opt.Experimental {
			errs = append(errs, ErrExperimentalInit)
		}
	default:
		errs = append(errs, fmt.Errorf("%w: %q (pid 1 is %q)", ErrUnknownInit, f.Init, f.PID1))
	}
	if (f.Init == InitSystemd || f.Init == InitRunit) && idleSHA256(f.Arch) == "" {
		errs = append(errs, fmt.Errorf("%w: %q", ErrNoIdleInit, f.Arch))
	}
	if len(f.FiniteAddrs) > 0 && !opt.PinAddresses && !s.PinAddresses {
		errs = append(errs, &FiniteAddrsError{Addrs: f.FiniteAddrs})
	}
	return joinRefusals(f.Host, errs)
}

func joinRefusals(host string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: refuse: %w", host, errors.Join(errs...))
}

// PlanPin returns the changes that pin every finite address lifetime to forever. The
// summaries shout: after this the DHCP lease is never renewed and the address stays
// even if the server gives it to someone else.
func PlanPin(host string, f Facts) []Change {
	var out []Change
	for _, a := range f.FiniteAddrs {
		out = append(out, Change{
			Host:  host,
			Stage: "arm",
			Kind:  KindCommand,
			Summary: fmt.Sprintf("PIN ADDRESS %s on %s: lifetime %ds -> forever; it will never be renewed or released",
				a.CIDR, a.Iface, a.ValidLft),
			Command: "ip addr change " + runner.Quote(a.CIDR) + " dev " + runner.Quote(a.Iface) + " valid_lft forever preferred_lft forever",
		})
	}
	return out
}
