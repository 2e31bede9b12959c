package runner

import (
	"fmt"
	"strings"
)

// Resolve completes t from the config. Values already in t (the inventory) win, as
// ssh command-line options do; Host becomes the HostName to dial.
func (c *SSHConfig) Resolve(t Target) (Target, error) {
	if t.Host == "" {
		t.Host = t.Name
	}
	if c == nil || t.resolved {
		return t, nil
	}
	e := &cfgEval{originalHost: t.Host, vals: map[string][]string{}, pos: map[string]string{}}
	seed := func(key string, v ...string) {
		if len(v) > 0 && v[0] != "" {
			e.set(cfgLine{pos: "inventory", key: key, args: v})
		}
	}
	seed("user", t.User)
	if t.Port != 0 {
		seed("port", fmt.Sprint(t.Port))
	}
	seed("identityfile", t.IdentityFiles...)
	if t.identitiesOnlySet {
		seed("identitiesonly", map[bool]string{true: "yes", false: "no"}[t.IdentitiesOnly])
	}
	seed("proxyjump", t.ProxyJump)
	seed("userknownhostsfile", t.UserKnownHostsFiles...)
	if err := c.walk(c.lines, e, 0); err != nil {
		return t, fmt.Errorf("%s: ssh config: %w", t.Name, err)
	}
	if e.sawFinal {
		e.final = true
		if err := c.walk(c.lines, e, 0); err != nil {
			return t, fmt.Errorf("%s: ssh config: %w", t.Name, err)
		}
	}
	out, err := c.settle(t, e)
	if err != nil {
		return t, fmt.Errorf("%s: ssh config: %w", t.Name, err)
	}
	out.resolved = true
	return out, nil
}

// settle turns the obtained values into Target fields. Options the inventory already
// set are kept: the config only fills gaps.
func (c *SSHConfig) settle(t Target, e *cfgEval) (Target, error) {
	out := t
	out.Host = e.hostname()
	out.User = e.get("user")
	if out.User == "" {
		out.User = c.localUser
	}
	var tmp Target // parses values with the same rules as inventory options
	for _, key := range []string{"port", "identitiesonly", "connecttimeout", "serveraliveinterval"} {
		if v := e.get(key); v != "" {
			if err := tmp.setOption(key, v); err != nil {
				return t, fmt.Errorf("%s: %w", e.pos[key], err)
			}
		}
	}
	out.Port = tmp.Port
	if out.Port == 0 {
		out.Port = 22
	}
	if tmp.identitiesOnlySet {
		out.IdentitiesOnly, out.identitiesOnlySet = tmp.IdentitiesOnly, true
	}
	if t.ConnectTimeout == 0 {
		out.ConnectTimeout = tmp.ConnectTimeout
	}
	if t.ServerAliveInterval == 0 {
		out.ServerAliveInterval = tmp.ServerAliveInterval
	}
	if t.HostKeys == HostKeyDefault {
		if v := e.get("stricthostkeychecking"); v != "" {
			p, err := parseStrict(v)
			if err != nil {
				return t, fmt.Errorf("%s: %w", e.pos["stricthostkeychecking"], err)
			}
			out.HostKeys = p
		}
	}
	out.ProxyJump = ""
	if p := e.vals["proxy"]; len(p) > 1 && !strings.EqualFold(p[1], "none") {
		if p[0] == "proxycommand" {
			return t, fmt.Errorf("%s: ProxyCommand is not supported; use ProxyJump", e.pos["proxy"])
		}
		out.ProxyJump = p[1]
	}
	out.IdentityFiles = nil
	for _, f := range e.vals["identityfile"] {
		if !strings.EqualFold(f, "none") {
			out.IdentityFiles = append(out.IdentityFiles, c.expandTokens(f, out, e))
		}
	}
	out.UserKnownHostsFiles = nil
	for _, f := range e.vals["userknownhostsfile"] {
		if !strings.EqualFold(f, "none") {
			out.UserKnownHostsFiles = append(out.UserKnownHostsFiles, c.expandTokens(f, out, e))
		}
	}
	return out, nil
}

// expandTokens expands ~ and the ssh_config % tokens for file names.
func (c *SSHConfig) expandTokens(s string, t Target, e *cfgEval) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(c.home)
		case 'u':
			b.WriteString(c.localUser)
		case 'h':
			b.WriteString(t.Host)
		case 'n':
			b.WriteString(e.originalHost)
		case 'r':
			b.WriteString(t.User)
		case 'p':
			b.WriteString(fmt.Sprint(t.Port))
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return c.expandHome(b.String())
}
