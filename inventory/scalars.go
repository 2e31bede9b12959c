package inventory

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

const quoted = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// Unsafe is a value tagged !unsafe: text Ansible must never template.
type Unsafe string

// MarshalJSON writes it the way ansible-inventory does.
func (u Unsafe) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"__ansible_unsafe": string(u)})
}

// Vault is a value tagged !vault: Ansible Vault ciphertext, kept undecrypted.
type Vault string

// MarshalJSON writes it the way ansible-inventory does.
func (v Vault) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"__ansible_vault": string(v)})
}

// YAML 1.1 implicit types, as PyYAML (and so Ansible) resolves plain scalars.
var (
	reNull  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	reBool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	reInt   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	reFloat = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
)

func (d *doc) scalar(n *yaml.Node) (any, error) {
	s := n.Value
	tag := ""
	if n.Style&yaml.TaggedStyle != 0 {
		tag = n.Tag
	} else if n.Style&quoted != 0 {
		return s, nil
	}
	if d.json && tag == "" {
		return jsonScalar(s), nil
	}
	switch tag {
	case "":
		switch {
		case reNull.MatchString(s):
			return nil, nil
		case reBool.MatchString(s):
			return parseBool11(s), nil
		case reInt.MatchString(s):
			v, err := parseInt11(s)
			if err != nil {
				return s, nil // out of range: PyYAML has big ints, keep the text
			}
			return v, nil
		case reFloat.MatchString(s):
			return parseFloat11(s), nil
		}
		return s, nil
	case "!!str", "!!binary", "!!timestamp":
		return s, nil
	case "!unsafe":
		return Unsafe(s), nil
	case "!vault":
		return Vault(s), nil
	case "!!null":
		return nil, nil
	case "!!bool":
		if !reBool.MatchString(s) {
			return nil, d.errorf(n, "", "invalid !!bool %q", s)
		}
		return parseBool11(s), nil
	case "!!int":
		v, err := parseInt11(s)
		if err != nil || !reInt.MatchString(s) {
			return nil, d.errorf(n, "", "invalid !!int %q", s)
		}
		return v, nil
	case "!!float":
		if reInt.MatchString(s) {
			v, err := parseInt11(s)
			if err == nil {
				return float64(v), nil
			}
		}
		if !reFloat.MatchString(s) {
			return nil, d.errorf(n, "", "invalid !!float %q", s)
		}
		return parseFloat11(s), nil
	}
	return nil, d.errorf(n, "", "unsupported YAML tag %s", tag)
}

func parseBool11(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true
	}
	return false
}

func parseInt11(s string) (int, error) {
	s = strings.ReplaceAll(s, "_", "")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v int64
	var err error
	switch {
	case strings.HasPrefix(s, "0b"):
		v, err = strconv.ParseInt(s[2:], 2, 64)
	case strings.HasPrefix(s, "0x"):
		v, err = strconv.ParseInt(s[2:], 16, 64)
	case strings.Contains(s, ":"):
		v, err = sexagesimal(s)
	case len(s) > 1 && s[0] == '0':
		v, err = strconv.ParseInt(s[1:], 8, 64)
	default:
		v, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil {
		return 0, err
	}
	if neg {
		v = -v
	}
	return int(v), nil
}

// sexagesimal parses YAML 1.1 base-60 integers such as 1:30 (= 90).
func sexagesimal(s string) (int64, error) {
	var v int64
	for _, part := range strings.Split(s, ":") {
		p, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return 0, err
		}
		if v > (math.MaxInt64-p)/60 {
			return 0, strconv.ErrRange
		}
		v = v*60 + p
	}
	return v, nil
}

func parseFloat11(s string) float64 {
	s = strings.ToLower(strings.ReplaceAll(s, "_", ""))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	var v float64
	switch {
	case s == ".inf":
		v = math.Inf(1)
	case s == ".nan":
		return math.NaN()
	case strings.Contains(s, ":"):
		parts := strings.Split(s, ":")
		for _, p := range parts {
			f, _ := strconv.ParseFloat(p, 64)
			v = v*60 + f
		}
	default:
		v, _ = strconv.ParseFloat(s, 64)
	}
	if neg {
		v = -v
	}
	return v
}

var reJSONNumber = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// jsonScalar types an unquoted JSON scalar as Python's json module does.
func jsonScalar(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	m := reJSONNumber.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	if m[1] == "" && m[2] == "" {
		if v, ok := pyInt(strings.TrimPrefix(s, "-")); ok {
			return negateIf(v, strings.HasPrefix(s, "-"))
		}
	}
	f, _ := strconv.ParseFloat(s, 64) // out of range is ±inf, as in Python
	return f
}

func negateIf(v any, neg bool) any {
	if neg {
		return negate(v)
	}
	return v
}

// jsonTagged turns {"__ansible_unsafe": s} and {"__ansible_vault": s} into
// Unsafe and Vault, as Ansible's JSON decoder does.
func (d *doc) jsonTagged(ps []pair) (any, bool) {
	if !d.json {
		return nil, false
	}
	for _, p := range ps {
		if p.key != "__ansible_unsafe" && p.key != "__ansible_vault" {
			continue
		}
		if p.v.Kind != yaml.ScalarNode || p.v.Style&yaml.DoubleQuotedStyle == 0 {
			return nil, false
		}
		if p.key == "__ansible_unsafe" {
			return Unsafe(p.v.Value), true
		}
		return Vault(p.v.Value), true
	}
	return nil, false
}
