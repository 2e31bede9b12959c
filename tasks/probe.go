package tasks

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/runner"
)

// ProbeTimeout bounds one probe's connect/reply wait on the probing host.
var ProbeTimeout = 2 * time.Second

// probePayload is what a udp probe sends; the lab's listeners echo it back.
const probePayload = "haltfleet-probe"

// ProbeResult is one outside check: what was seen, and whether that was expected.
type ProbeResult struct {
	Probe  inventory.Probe `json:"probe"`
	Open   bool            `json:"open"`
	OK     bool            `json:"ok"`
	Detail string          `json:"detail,omitempty"`
	// Err says the probe could not run at all (then OK is false and Open meaningless).
	Err      string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
}

// probeTarget splits and checks Probe.To; a leading "-" would become an option of nc or ping.
func probeTarget(p inventory.Probe) (host, port string, err error) {
	host, port, err = net.SplitHostPort(p.To)
	if err != nil {
		if p.Proto != "icmp" {
			return "", "", fmt.Errorf("probe target %q: want ADDR:PORT for %s", p.To, p.Proto)
		}
		host, port = p.To, ""
	}
	if host == "" || strings.HasPrefix(host, "-") || strings.ContainsAny(host, " \t\n/") {
		return "", "", fmt.Errorf("probe target %q: bad address", p.To)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", "", fmt.Errorf("probe target %q: bad port", p.To)
		}
	}
	return host, port, nil
}

// ProbeCommand is the sh command that runs p on the probing host. It always exits 0
// and ends with "rc=N" (N the tool's status) or "rc=noprobe" when no tool exists.
func ProbeCommand(p inventory.Probe, timeout time.Duration) (string, error) {
	host, port, err := probeTarget(p)
	if err != nil {
		return "", err
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	t := strconv.Itoa(secs)
	h, pt := runner.Quote(host), runner.Quote(port)
	var body string
	switch p.Proto {
	case "tcp":
		body = "if command -v nc >/dev/null 2>&1; then nc -z -v -w " + t + " " + h + " " + pt + "; " +
			"elif command -v bash >/dev/null 2>&1; then timeout " + t + " bash -c " +
			runner.Quote(`exec 3<>"/dev/tcp/$0/$1" && echo "connected to $0 port $1"`) + " " + h + " " + pt + "; " +
			"else echo 'rc=noprobe'; exit 0; fi"
	case "udp":
		// a reply is "open"; silence within the timeout is "closed". The bash fallback reads
		// with dd: one read(2) takes one whole datagram, bash's read would take one byte of it.
		// Datagrams get lost (a busy host, a full queue): up to three tries before "closed".
		body = "r=; for try in 1 2 3; do " +
			"if command -v nc >/dev/null 2>&1; then r=$(printf '%s\\n' " + probePayload + " | nc -u -w " + t + " " + h + " " + pt + "); " +
			"elif command -v bash >/dev/null 2>&1; then r=$(timeout " + t + " bash -c " +
			runner.Quote(`exec 3<>"/dev/udp/$0/$1" && echo `+probePayload+` >&3 && dd bs=65536 count=1 <&3 2>/dev/null`) +
			" " + h + " " + pt + "); " +
			"else echo 'rc=noprobe'; exit 0; fi; [ -n \"$r\" ] && break; done; " +
			`if [ -n "$r" ]; then echo "reply: $r"; (exit 0); else echo 'no reply'; (exit 1); fi`
	case "icmp":
		body = "if command -v ping >/dev/null 2>&1; then ping -n -c 1 -W " + t + " " + h + "; " +
			"else echo 'rc=noprobe'; exit 0; fi"
	default:
		return "", fmt.Errorf("probe proto %q: want tcp, udp or icmp", p.Proto)
	}
	return "{ " + body + "\n} 2>&1; echo \"rc=$?\"", nil
}

// expectOpen maps Probe.Expect.
func expectOpen(expect string) (bool, error) {
	switch strings.ToLower(expect) {
	case "open":
		return true, nil
	case "closed":
		return false, nil
	}
	return false, fmt.Errorf("probe expect %q: want open or closed", expect)
}

// RunProbe runs p from r (an inventory host over SSH, or the controller with a local
// runner) and compares what it saw with p.Expect.
func RunProbe(ctx context.Context, r runner.Runner, p inventory.Probe) ProbeResult {
	start := time.Now()
	res := ProbeResult{Probe: p}
	done := func() ProbeResult { res.Duration = time.Since(start); return res }
	want, err := expectOpen(p.Expect)
	if err != nil {
		res.Err = err.Error()
		return done()
	}
	cmd, err := ProbeCommand(p, ProbeTimeout)
	if err != nil {
		res.Err = err.Error()
		return done()
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout+5*time.Second)
	defer cancel()
	out, err := r.Exec(ctx, runner.Cmd{Command: cmd})
	if err != nil {
		res.Err = fmt.Sprintf("%s: probe: %v", r.Name(), err)
		return done()
	}
	open, detail, err := interpretProbe(string(out.Stdout))
	if err != nil {
		res.Err = fmt.Sprintf("%s: probe %s %s: %v", r.Name(), p.Proto, p.To, err)
		return done()
	}
	res.Open, res.Detail, res.OK = open, detail, open == want
	return done()
}

// interpretProbe reads ProbeCommand's output: rc=0 is open, any other status closed.
func interpretProbe(out string) (open bool, detail string, err error) {
	out = strings.TrimRight(out, "\n")
	i := strings.LastIndex(out, "rc=")
	if i < 0 {
		return false, "", fmt.Errorf("no status in probe output %q", clean(out))
	}
	status := strings.TrimSpace(out[i+3:])
	detail = clean(strings.TrimSpace(out[:i]))
	if strings.Contains(out, "rc=noprobe") {
		return false, detail, fmt.Errorf("no nc, bash or ping on the probing host")
	}
	code, err := strconv.Atoi(status)
	if err != nil {
		return false, detail, fmt.Errorf("bad probe status %q", clean(status))
	}
	if code == 127 {
		return false, detail, fmt.Errorf("probe tool missing: %s", detail)
	}
	return code == 0, detail, nil
}
