package runner

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// HostKeyPolicy says what to do with a host key that is not in known_hosts. A key that
// differs from a known one is refused under every policy.
type HostKeyPolicy int

const (
	HostKeyDefault   HostKeyPolicy = iota // whatever the Pool says (strict unless AcceptNew)
	HostKeyStrict                         // unknown keys are refused (StrictHostKeyChecking=yes/ask)
	HostKeyAcceptNew                      // unknown keys are added (accept-new; also "no", made safe)
)

// Target is how to reach one host: the Ansible connection variables, completed by
// ssh_config. Zero values mean "not set" so ssh_config (and then defaults) can fill them.
type Target struct {
	Name          string // inventory host name, for messages
	Host          string // address or ssh_config alias to connect to; Name when empty
	Port          int
	User          string
	IdentityFiles []string
	// IdentitiesOnly: use only IdentityFiles (and agent keys matching them).
	IdentitiesOnly bool
	Become         bool   // inventory asks for privilege escalation (ansible_become)
	BecomeUser     string // default root
	// ProxyJump: comma-separated hops [user@]host[:port], each resolved via ssh_config.
	ProxyJump           string
	HostKeys            HostKeyPolicy
	UserKnownHostsFiles []string // replaces ~/.ssh/known_hosts when set
	ConnectTimeout      time.Duration
	ServerAliveInterval time.Duration

	identitiesOnlySet bool // IdentitiesOnly was given explicitly (first value wins)
	resolved          bool // ssh_config already applied
}

// TargetFromVars maps Ansible connection variables to a Target. Unknown variables are
// ignored (an inventory holds much more than connection settings).
func TargetFromVars(name string, vars map[string]any) (Target, error) {
	t := Target{Name: name, Host: name}
	var err error
	str := func(key string, dst *string) {
		if v, ok := vars[key]; ok && err == nil {
			s, e := asString(v)
			if e != nil {
				err = fmt.Errorf("%s: %s: %w", name, key, e)
			}
			*dst = s
		}
	}
	str("ansible_host", &t.Host)
	str("ansible_user", &t.User)
	str("ansible_become_user", &t.BecomeUser)
	str("ansible_ssh_host", &t.Host) // pre-2.0 spelling, still seen in old inventories
	var key string
	str("ansible_ssh_private_key_file", &key)
	if key != "" {
		t.IdentityFiles = []string{key}
	}
	if v, ok := vars["ansible_port"]; ok && err == nil {
		if t.Port, err = asPort(v); err != nil {
			err = fmt.Errorf("%s: ansible_port: %w", name, err)
		}
	}
	if v, ok := vars["ansible_become"]; ok && err == nil {
		if t.Become, err = asBool(v); err != nil {
			err = fmt.Errorf("%s: ansible_become: %w", name, err)
		}
	}
	for _, k := range []string{"ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		var args string
		str(k, &args)
		if err == nil && args != "" {
			if e := t.applySSHArgs(args); e != nil {
				err = fmt.Errorf("%s: %s: %w", name, k, e)
			}
		}
	}
	if err != nil {
		return Target{}, err
	}
	if t.Host == "" {
		t.Host = name
	}
	if err := checkAddress(t.Host); err != nil {
		what := "ansible_host"
		if _, set := vars["ansible_host"]; !set {
			if _, old := vars["ansible_ssh_host"]; !old {
				what = "host name used as address (set ansible_host)"
			}
		}
		return Target{}, fmt.Errorf("%s: %s %s: %w", strconv.Quote(name), what, strconv.Quote(t.Host), err)
	}
	return t, nil
}

// checkAddress accepts an IP address or a DNS name (letters, digits, '-' and '_' in
// labels of at most 63, 253 in all), so a hostile inventory value never reaches the
// resolver or an error message as anything else.
func checkAddress(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if ip, zone, ok := strings.Cut(h, "%"); ok && strings.Contains(ip, ":") && net.ParseIP(ip) != nil && zone != "" && checkAddress(zone) == nil {
		return nil // a link-local IPv6 address with its interface: fe80::1%eth0
	}
	if h == "" || len(h) > 253 {
		return errors.New("not an IP address or DNS name (length)")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return errors.New("not an IP address or DNS name")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("not an IP address or DNS name")
			}
		}
	}
	return nil
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int, int64, float64, bool:
		return fmt.Sprint(x), nil // YAML turns host: 10 or user: 1000 into numbers
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("want a string, got %T", v)
}

func asPort(v any) (int, error) {
	var p int
	switch x := v.(type) {
	case int:
		p = x
	case int64:
		p = int(x)
	case float64:
		p = int(x)
		if float64(p) != x {
			return 0, fmt.Errorf("want a port number, got %v", x)
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("want a port number, got %q", x)
		}
		p = n
	default:
		return 0, fmt.Errorf("want a port number, got %T", v)
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range", p)
	}
	return p, nil
}

// asBool follows Ansible's boolean filter: yes/no, true/false, on/off, 1/0.
func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "true", "on", "1", "y", "t":
			return true, nil
		case "no", "false", "off", "0", "n", "f", "":
			return false, nil
		}
	}
	return false, fmt.Errorf("want a boolean, got %T %v", v, v)
}

// applySSHArgs understands the ssh options inventories put in ansible_ssh_*_args.
// Anything else is an error, because silently ignoring a connection option could send
// us to the wrong host or past a host-key check.
func (t *Target) applySSHArgs(args string) error {
	words, err := splitArgs(args)
	if err != nil {
		return err
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		next := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s needs an argument", w)
			}
			i++
			return words[i], nil
		}
		switch {
		case w == "-o" || w == "-J" || w == "-p" || w == "-l" || w == "-i":
			v, err := next()
			if err != nil {
				return err
			}
			if err := t.applySSHFlag(w, v); err != nil {
				return err
			}
		case strings.HasPrefix(w, "-o") || strings.HasPrefix(w, "-J") || strings.HasPrefix(w, "-p") ||
			strings.HasPrefix(w, "-l") || strings.HasPrefix(w, "-i"):
			if err := t.applySSHFlag(w[:2], w[2:]); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported ssh argument %q (supported: -o Option=value, -J, -p, -l, -i)", w)
		}
	}
	return nil
}

func (t *Target) applySSHFlag(flag, v string) error {
	switch flag {
	case "-J":
		return t.setOption("proxyjump", v)
	case "-p":
		return t.setOption("port", v)
	case "-l":
		return t.setOption("user", v)
	case "-i":
		return t.setOption("identityfile", v)
	}
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		k, val, ok = strings.Cut(strings.TrimSpace(v), " ")
	}
	if !ok {
		return fmt.Errorf("-o %q: want Option=value", v)
	}
	return t.setOption(strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(val), `"`))
}

// setOption applies one ssh option given on the "command line" (inventory): these come
// before ssh_config and so win over it. As in ssh, the first value obtained wins, and
// ansible_user/ansible_port come before the *_args (Ansible puts them first).
func (t *Target) setOption(key, v string) error {
	if t.optionSet(key) {
		return nil
	}
	switch key {
	case "proxyjump":
		t.ProxyJump = v
	case "port":
		p, err := asPort(v)
		if err != nil {
			return fmt.Errorf("Port: %w", err)
		}
		t.Port = p
	case "user":
		t.User = v
	case "identityfile":
		t.IdentityFiles = append(t.IdentityFiles, v)
	case "identitiesonly":
		b, err := asBool(v)
		if err != nil {
			return fmt.Errorf("IdentitiesOnly: %w", err)
		}
		t.IdentitiesOnly, t.identitiesOnlySet = b, true
	case "stricthostkeychecking":
		p, err := parseStrict(v)
		if err != nil {
			return err
		}
		t.HostKeys = p
	case "userknownhostsfile":
		t.UserKnownHostsFiles = strings.Fields(v)
	case "connecttimeout":
		d, err := parseSeconds(v)
		if err != nil {
			return fmt.Errorf("ConnectTimeout: %w", err)
		}
		t.ConnectTimeout = d
	case "serveraliveinterval":
		d, err := parseSeconds(v)
		if err != nil {
			return fmt.Errorf("ServerAliveInterval: %w", err)
		}
		t.ServerAliveInterval = d
	case "controlmaster", "controlpersist", "controlpath", "forwardagent", "compression",
		"loglevel", "serveralivecountmax", "preferredauthentications", "pubkeyauthentication":
		// Connection-sharing and cosmetic options: our Pool already shares one
		// connection per host, and these do not change where or how we authenticate.
	default:
		return fmt.Errorf("unsupported ssh option %q", key)
	}
	return nil
}

func parseStrict(v string) (HostKeyPolicy, error) {
	switch strings.ToLower(v) {
	case "yes", "ask", "true":
		return HostKeyStrict, nil
	case "accept-new", "no", "off", "false":
		return HostKeyAcceptNew, nil
	}
	return 0, fmt.Errorf("StrictHostKeyChecking: unknown value %q", v)
}

func parseSeconds(v string) (time.Duration, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want seconds, got %q", v)
	}
	return time.Duration(n) * time.Second, nil
}

// splitArgs splits a command line the way Ansible's shlex does for the common cases:
// whitespace separates, single and double quotes group, backslash escapes.
func splitArgs(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else if r == '\\' && quote == '"' && i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// optionSet reports whether a scalar option already has its (first) value.
func (t *Target) optionSet(key string) bool {
	switch key {
	case "proxyjump":
		return t.ProxyJump != ""
	case "port":
		return t.Port != 0
	case "user":
		return t.User != ""
	case "identitiesonly":
		return t.identitiesOnlySet
	case "stricthostkeychecking":
		return t.HostKeys != HostKeyDefault
	case "userknownhostsfile":
		return len(t.UserKnownHostsFiles) > 0
	case "connecttimeout":
		return t.ConnectTimeout != 0
	case "serveraliveinterval":
		return t.ServerAliveInterval != 0
	}
	return false
}
