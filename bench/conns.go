package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// connTable counts, in the controller's own namespace, the TCP SYNs sent to port 22 of
// each fleet address: one per SSH connection, whatever program opens it. It lives in the
// root namespace because the rulesets under test begin with "flush ruleset" in each host.
// One table per fleet prefix, so two benchmarks on different prefixes never meet.
func connTable(prefix string) string { return "hfbench_" + prefix }

func connRules(prefix, cidr string) string {
	return `table inet ` + connTable(prefix) + ` {
	set conns { type ipv4_addr; size 65535; flags dynamic; counter; }
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr ` + cidr + ` tcp dport 22 tcp flags & (syn|ack) == syn add @conns { ip daddr }
	}
}
`
}

// StartConnCounter loads the counting table (replacing a stale one).
func StartConnCounter(ctx context.Context, prefix, cidr string) error {
	_ = StopConnCounter(ctx, prefix)
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(connRules(prefix, cidr))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("connection counter: nft: %w: %s", err, out)
	}
	return nil
}

// StopConnCounter removes the table; a missing one is not an error.
func StopConnCounter(ctx context.Context, prefix string) error {
	out, err := exec.CommandContext(ctx, "nft", "delete", "table", "inet", connTable(prefix)).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("connection counter: nft delete: %w: %s", err, out)
	}
	return nil
}

// ResetConns zeroes every count.
func ResetConns(ctx context.Context, prefix string) error {
	if out, err := exec.CommandContext(ctx, "nft", "flush", "set", "inet", connTable(prefix), "conns").CombinedOutput(); err != nil {
		return fmt.Errorf("connection counter: flush: %w: %s", err, out)
	}
	return nil
}

// ReadConns returns the SYNs per address since the last reset.
func ReadConns(ctx context.Context, prefix string) (map[string]int, error) {
	out, err := exec.CommandContext(ctx, "nft", "-j", "list", "set", "inet", connTable(prefix), "conns").Output()
	if err != nil {
		return nil, fmt.Errorf("connection counter: list: %w", err)
	}
	return parseConns(out)
}

func parseConns(js []byte) (map[string]int, error) {
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []struct {
					Elem struct {
						Val     string `json:"val"`
						Counter struct {
							Packets int `json:"packets"`
						} `json:"counter"`
					} `json:"elem"`
				} `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("connection counter: parse: %w", err)
	}
	m := map[string]int{}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			m[e.Elem.Val] += e.Elem.Counter.Packets
		}
	}
	return m, nil
}
