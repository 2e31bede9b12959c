package inventory

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

// Settings are a host's haltfleet_* variables, validated, with defaults filled in.
type Settings struct {
	Ruleset         string // absolute path, or "" when unset
	RulesetTemplate bool   // render Ruleset as text/template over the host's vars
	Halt            bool
	Probes          []Probe
	Sysctls         map[string]string
	DeadmanSeconds  int
	PinAddresses    bool
	WaveGroup       string
	SSHGoneSeconds  int
	ManagePorts     []int
}

// Probe is one outside check of a halted firewall: from an inventory host (or
// the controller) to ADDR:PORT, expecting the port open or closed.
type Probe struct {
	From, To, Proto, Expect string
	Pos                     Pos
}

// Controller is the Probe.From value meaning the machine running haltfleet.
const Controller = "controller"

const settingPrefix = "haltfleet_"

// setting is one parsed haltfleet_ value and where it was written.
type setting struct {
	val any
	pos Pos
}

type settingParser func(d *doc, n *yaml.Node) (any, error)

var settingParsers = map[string]settingParser{
	"haltfleet_ruleset":          parseRuleset,
	"haltfleet_ruleset_template": parseBoolSetting,
	"haltfleet_halt":             parseBoolSetting,
	"haltfleet_probes":           parseProbes,
	"haltfleet_sysctls":          parseSysctls,
	"haltfleet_deadman_seconds":  parsePositiveInt,
	"haltfleet_pin_addresses":    parseBoolSetting,
	"haltfleet_wave_group":       parseStringSetting,
	"haltfleet_ssh_gone_seconds": parsePositiveInt,
	"haltfleet_manage_ports":     parsePorts,
}

func isSettingName(name string) bool { return strings.HasPrefix(name, settingPrefix) }

func parseSetting(d *doc, p pair) (setting, error) {
	parse := settingParsers[p.key]
	if parse == nil {
		known := make([]string, 0, len(settingParsers))
		for k := range settingParsers {
			known = append(known, k)
		}
		slices.Sort(known)
		return setting{}, d.errorf(p.k, "", "unknown haltfleet variable %q (known: %s)", p.key, strings.Join(known, ", "))
	}
	n, _, err := d.deref(p.v, p.alias)
	if err != nil {
		return setting{}, err
	}
	v, err := parse(d, n)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.Msg = p.key + ": " + e.Msg
		}
		return setting{}, err
	}
	return setting{val: v, pos: d.pos(p.k)}, nil
}

func buildSettings(vals map[string]setting) Settings {
	s := Settings{Halt: true, DeadmanSeconds: 60, SSHGoneSeconds: 60, ManagePorts: []int{22}, Sysctls: map[string]string{}}
	for name, v := range vals {
		switch name {
		case "haltfleet_ruleset":
			s.Ruleset = v.val.(string)
		case "haltfleet_ruleset_template":
			s.RulesetTemplate = v.val.(bool)
		case "haltfleet_halt":
			s.Halt = v.val.(bool)
		case "haltfleet_probes":
			s.Probes = v.val.([]Probe)
		case "haltfleet_sysctls":
			s.Sysctls = v.val.(map[string]string)
		case "haltfleet_deadman_seconds":
			s.DeadmanSeconds = v.val.(int)
		case "haltfleet_pin_addresses":
			s.PinAddresses = v.val.(bool)
		case "haltfleet_wave_group":
			s.WaveGroup = v.val.(string)
		case "haltfleet_ssh_gone_seconds":
			s.SSHGoneSeconds = v.val.(int)
		case "haltfleet_manage_ports":
			s.ManagePorts = v.val.([]int)
		}
	}
	return s
}

// scalarOf returns the YAML 1.1 typed value of a scalar node, or an error naming what it got.
func scalarOf(d *doc, n *yaml.Node, want string) (any, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return nil, d.errorf(n, "", "want %s, got %s", want, kindName(n))
	}
	return d.scalar(n)
}

// annotate says which part of a setting an error is about.
func annotate(err error, what string) error {
	if e, ok := err.(*Error); ok {
		e.Msg += " (" + what + ")"
	}
	return err
}

func parseBoolSetting(d *doc, n *yaml.Node) (any, error) {
	v, err := scalarOf(d, n, "a boolean")
	if err != nil {
		return nil, err
	}
	if b, ok := v.(bool); ok {
		return b, nil
	}
	return nil, d.errorf(n, "", "want a boolean, got %q", n.Value)
}

func parseStringSetting(d *doc, n *yaml.Node) (any, error) {
	v, err := scalarOf(d, n, "a string")
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return nil, d.errorf(n, "", "want a non-empty string, got %q", n.Value)
	}
	return s, nil
}

func parseIntNode(d *doc, n *yaml.Node) (int, error) {
	v, err := scalarOf(d, n, "an integer")
	if err != nil {
		return 0, err
	}
	i, ok := v.(int)
	if !ok {
		return 0, d.errorf(n, "", "want an integer, got %q", n.Value)
	}
	return i, nil
}

func parsePositiveInt(d *doc, n *yaml.Node) (any, error) {
	i, err := parseIntNode(d, n)
	if err == nil && i <= 0 {
		err = d.errorf(n, "", "must be greater than 0, got %d", i)
	}
	return i, err
}

func parsePorts(d *doc, n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.errorf(n, "", "want a list of ports, got %s", kindName(n))
	}
	ports := []int{}
	for _, c := range n.Content {
		c, _, err := d.deref(c, false)
		if err != nil {
			return nil, err
		}
		p, err := parseIntNode(d, c)
		if err != nil {
			return nil, err
		}
		if p < 1 || p > 65535 {
			return nil, d.errorf(c, "", "port %d out of range 1-65535", p)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// parseRuleset resolves the path against the inventory file's directory and
// refuses relative paths that climb out of it.
func parseRuleset(d *doc, n *yaml.Node) (any, error) {
	v, err := parseStringSetting(d, n)
	if err != nil {
		return nil, err
	}
	p := v.(string)
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	if !filepath.IsLocal(p) {
		return nil, d.errorf(n, "", "relative path %q escapes the inventory directory %s", p, d.dir)
	}
	return filepath.Join(d.dir, p), nil
}

func parseSysctls(d *doc, n *yaml.Node) (any, error) {
	if n.Kind != yaml.MappingNode {
		return nil, d.errorf(n, "", "want a mapping of sysctl names to values, got %s", kindName(n))
	}
	ps, err := d.pairs(n, false, 1)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		v, _, err := d.deref(p.v, p.alias)
		if err != nil {
			return nil, err
		}
		s, err := scalarOf(d, v, "a scalar value")
		if err != nil {
			return nil, annotate(err, "sysctl "+p.key)
		}
		out[p.key] = sysctlString(s)
	}
	return out, nil
}

// sysctlString writes a value as Ansible's sysctl module does: booleans as 1/0.
func sysctlString(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return "1"
		}
		return "0"
	case string:
		switch strings.ToLower(v) {
		case "true", "yes":
			return "1"
		case "false", "no":
			return "0"
		}
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func parseProbes(d *doc, n *yaml.Node) (any, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.errorf(n, "", "want a list of probes, got %s", kindName(n))
	}
	probes := []Probe{}
	for _, c := range n.Content {
		c, _, err := d.deref(c, false)
		if err != nil {
			return nil, err
		}
		p, err := parseProbe(d, c)
		if err != nil {
			return nil, err
		}
		probes = append(probes, p)
	}
	return probes, nil
}

func parseProbe(d *doc, n *yaml.Node) (Probe, error) {
	p := Probe{Proto: "tcp", Pos: d.pos(n)}
	if n.Kind != yaml.MappingNode {
		return p, d.errorf(n, "", "probe must be a mapping {from, to, proto, expect}, got %s", kindName(n))
	}
	ps, err := d.pairs(n, false, 1)
	if err != nil {
		return p, err
	}
	for _, f := range ps {
		if !slices.Contains([]string{"from", "to", "proto", "expect"}, f.key) {
			return p, d.errorf(f.k, "", "unknown probe field %q (want from, to, proto, expect)", f.key)
		}
		v, _, err := d.deref(f.v, f.alias)
		if err != nil {
			return p, err
		}
		s, err := parseStringSetting(d, v)
		if err != nil {
			return p, annotate(err, "probe field "+f.key)
		}
		switch f.key {
		case "from":
			p.From = s.(string)
		case "to":
			p.To = s.(string)
		case "proto":
			p.Proto = s.(string)
		case "expect":
			p.Expect = s.(string)
		}
	}
	switch {
	case p.From == "":
		return p, d.errorf(n, "", "probe needs from: (an inventory host or %q)", Controller)
	case p.To == "":
		return p, d.errorf(n, "", "probe needs to: ADDR:PORT")
	case p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "icmp":
		return p, d.errorf(n, "", "probe proto %q: want tcp, udp or icmp", p.Proto)
	case p.Expect != "open" && p.Expect != "closed":
		return p, d.errorf(n, "", "probe expect %q: want open or closed", p.Expect)
	}
	if err := checkProbeTarget(p.To, p.Proto); err != nil {
		return p, d.errorf(n, "", "probe to %q: %v", p.To, err)
	}
	return p, nil
}

func checkProbeTarget(to, proto string) error {
	host, port, err := net.SplitHostPort(to)
	if err != nil {
		if proto != "icmp" {
			return fmt.Errorf("want ADDR:PORT for %s", proto)
		}
		host, port = to, ""
	}
	if host == "" || strings.ContainsAny(host, " \t\n/[]") {
		return fmt.Errorf("bad address %q", host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("bad port %q", port)
		}
	}
	return nil
}

// checkProbes verifies, once every file is loaded, that each probe starts from
// a known host or the controller.
func (b *builder) checkProbes() {
	reported := map[Probe]bool{} // a group's probe is shared by its hosts: report it once
	for _, h := range b.inv.Hosts {
		for _, p := range h.Settings.Probes {
			if p.From != Controller && b.hosts[p.From] == nil && !reported[p] {
				reported[p] = true
				b.fail(&Error{Pos: p.Pos, Subject: fmt.Sprintf("host %q", h.Name),
					Msg: fmt.Sprintf("haltfleet_probes: from %q is neither an inventory host nor %q", p.From, Controller)})
			}
		}
	}
}

// RulesetText reads the host's ruleset file; with haltfleet_ruleset_template
// it is rendered as a Go text/template over the host's vars (plus
// inventory_hostname and group_names), failing on any missing key.
func (h *Host) RulesetText() ([]byte, error) {
	if h.Settings.Ruleset == "" {
		return nil, fmt.Errorf("%s: ruleset: haltfleet_ruleset is not set", h.Name)
	}
	data, err := readLimited(h.Settings.Ruleset)
	if err != nil {
		return nil, fmt.Errorf("%s: ruleset: %w", h.Name, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: ruleset: %s is larger than %d bytes", h.Name, h.Settings.Ruleset, maxFileSize)
	}
	if !h.Settings.RulesetTemplate {
		return data, nil
	}
	// Named by the full path, so template errors read "PATH:LINE: ...".
	tmpl, err := template.New(h.Settings.Ruleset).Option("missingkey=error").Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: ruleset template: %w", h.Name, err)
	}
	vars := maps.Clone(h.Vars)
	vars["inventory_hostname"] = h.Name
	vars["group_names"] = slices.DeleteFunc(slices.Clone(h.Groups), func(g string) bool { return g == "all" || g == "ungrouped" })
	var out bytes.Buffer
	if err := tmpl.Execute(&out, vars); err != nil {
		return nil, fmt.Errorf("%s: ruleset template: %w", h.Name, err)
	}
	return out.Bytes(), nil
}
