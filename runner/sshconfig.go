package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
)

// SSHConfig is a parsed ssh_config(5) file: Host and Match blocks, Include, and the
// options that decide where and how we connect. Other options are ignored.
type SSHConfig struct {
	lines     []cfgLine
	dir       string // relative Include paths start here (~/.ssh, as in OpenSSH)
	home      string
	localUser string
	readFile  func(string) ([]byte, error)
	glob      func(string) ([]string, error)
}

type cfgLine struct {
	pos  string // file:line, for errors
	key  string // lower-cased keyword
	args []string
}

// LoadSSHConfig reads path, or ~/.ssh/config when path is empty (a missing default file is
// an empty config; a missing explicit file is an error).
func LoadSSHConfig(path string) (*SSHConfig, error) {
	home, _ := os.UserHomeDir()
	c := newSSHConfig(home)
	explicit := path != ""
	if !explicit {
		path = filepath.Join(home, ".ssh", "config")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	c.lines, err = parseSSHConfig(data, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseSSHConfig parses config text; Include paths resolve against home/.ssh.
func ParseSSHConfig(data []byte, home string) (*SSHConfig, error) {
	c := newSSHConfig(home)
	var err error
	c.lines, err = parseSSHConfig(data, "config")
	return c, err
}

func newSSHConfig(home string) *SSHConfig {
	lu := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		lu = u.Username
	}
	return &SSHConfig{dir: filepath.Join(home, ".ssh"), home: home, localUser: lu,
		readFile: os.ReadFile, glob: filepath.Glob}
}

func parseSSHConfig(data []byte, name string) ([]cfgLine, error) {
	var out []cfgLine
	for i, raw := range strings.Split(string(data), "\n") {
		words, err := configWords(raw)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		if len(words) == 0 {
			continue
		}
		out = append(out, cfgLine{pos: fmt.Sprintf("%s:%d", name, i+1), key: strings.ToLower(words[0]), args: words[1:]})
	}
	return out, nil
}

// configWords splits one line: the keyword ends at whitespace or '=', arguments are
// whitespace separated with double quotes grouping, and a word starting with '#' starts
// a comment.
func configWords(line string) ([]string, error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return []string{line}, nil
	}
	kw, rest := line[:i], strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = rest[1:]
	}
	words := []string{kw}
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range rest {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t' || r == '\r'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !quoted && !inWord && r == '#':
			return words, nil
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// cfgEval is one resolution: the first value obtained for each option wins.
type cfgEval struct {
	originalHost string
	vals         map[string][]string
	pos          map[string]string
	final        bool // second pass, for Match final/canonical
	sawFinal     bool
}

func (e *cfgEval) set(l cfgLine) {
	if l.key == "identityfile" || l.key == "certificatefile" { // accumulate, without duplicates (as ssh)
		for _, a := range l.args {
			if !slices.Contains(e.vals[l.key], a) {
				e.vals[l.key] = append(e.vals[l.key], a)
			}
		}
		return
	}
	if l.key == "proxycommand" || l.key == "proxyjump" { // mutually exclusive: the first one wins
		if _, ok := e.vals["proxy"]; ok {
			return
		}
		e.vals["proxy"] = append([]string{l.key}, l.args...)
		e.pos["proxy"] = l.pos
		return
	}
	if _, ok := e.vals[l.key]; !ok {
		e.vals[l.key], e.pos[l.key] = l.args, l.pos
	}
}

func (e *cfgEval) get(key string) string {
	if v := e.vals[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hostname is the current target host name: HostName (with %h) if obtained, else the
// name we were asked to connect to.
func (e *cfgEval) hostname() string {
	h := e.get("hostname")
	if h == "" {
		return e.originalHost
	}
	return strings.ReplaceAll(strings.ReplaceAll(h, "%h", e.originalHost), "%%", "%")
}

func (c *SSHConfig) walk(lines []cfgLine, e *cfgEval, depth int) error {
	if depth > 16 {
		return errors.New("ssh config: Include nested too deeply")
	}
	active := true
	for _, l := range lines {
		switch l.key {
		case "host":
			active = matchList(e.originalHost, l.args, true)
		case "match":
			ok, err := c.match(l, e)
			if err != nil {
				return err
			}
			active = ok
		case "include":
			if !active {
				continue
			}
			for _, pat := range l.args {
				if err := c.include(pat, e, depth); err != nil {
					return fmt.Errorf("%s: Include %s: %w", l.pos, pat, err)
				}
			}
		default:
			if active && len(l.args) > 0 {
				e.set(l)
			}
		}
	}
	return nil
}

func (c *SSHConfig) include(pat string, e *cfgEval, depth int) error {
	pat = c.expandHome(pat)
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(c.dir, pat)
	}
	files, err := c.glob(pat)
	if err != nil {
		return err
	}
	for _, f := range files { // Glob returns them sorted, as OpenSSH's glob(3) does
		data, err := c.readFile(f)
		if err != nil {
			return err
		}
		lines, err := parseSSHConfig(data, f)
		if err != nil {
			return err
		}
		if err := c.walk(lines, e, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// match evaluates a Match line. Criteria are ANDed and evaluated in order; an
// unsupported criterion is an error only when reached, as OpenSSH skips exec after a miss.
func (c *SSHConfig) match(l cfgLine, e *cfgEval) (bool, error) {
	args := l.args
	if len(args) == 0 {
		return false, fmt.Errorf("%s: Match needs criteria", l.pos)
	}
	result := true
	for i := 0; i < len(args); i++ {
		crit := strings.ToLower(args[i])
		negate := strings.HasPrefix(crit, "!")
		crit = strings.TrimPrefix(crit, "!")
		var ok bool
		switch crit {
		case "all":
			ok = true
		case "canonical", "final":
			e.sawFinal = true
			ok = e.final
		case "host", "originalhost", "user", "localuser":
			if i+1 >= len(args) {
				return false, fmt.Errorf("%s: Match %s needs an argument", l.pos, crit)
			}
			i++
			pats := strings.Split(args[i], ",")
			switch crit {
			case "host":
				ok = matchList(e.hostname(), pats, true)
			case "originalhost":
				ok = matchList(e.originalHost, pats, true)
			case "user":
				u := e.get("user")
				if u == "" {
					u = c.localUser
				}
				ok = matchList(u, pats, false)
			case "localuser":
				ok = matchList(c.localUser, pats, false)
			}
		default:
			return false, fmt.Errorf("%s: Match %s is not supported (supported: all, host, originalhost, user, localuser, canonical, final)", l.pos, crit)
		}
		if ok == negate {
			result = false
			if crit != "canonical" && crit != "final" {
				return false, nil // later criteria (perhaps exec) are not evaluated
			}
		}
	}
	return result, nil
}

// matchList is OpenSSH's match_pattern_list: any negated match rejects, else any
// positive match accepts.
func matchList(s string, pats []string, fold bool) bool {
	if fold {
		s = strings.ToLower(s)
	}
	found := false
	for _, p := range pats {
		for _, p := range strings.Split(p, ",") {
			if fold {
				p = strings.ToLower(p)
			}
			neg := strings.HasPrefix(p, "!")
			if wildMatch(strings.TrimPrefix(p, "!"), s) {
				if neg {
					return false
				}
				found = true
			}
		}
	}
	return found
}

// wildMatch matches s against a pattern with * and ? wildcards.
func wildMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildMatch(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

func (c *SSHConfig) expandHome(p string) string {
	if p == "~" {
		return c.home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(c.home, p[2:])
	}
	return p
}

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
