package inventory

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/internal/testenv"
)

// INI values Ansible types with ast.literal_eval, and host lines it splits
// with shlex: each case is checked against the real Python.
var (
	literalCases = []string{
		"5", "-5", "+3", "- 7", "1_000", "0x1F", "0o17", "0b101", "010", "00", "1__0", "_1", "1_",
		"1.5", ".5", "1.", "1e3", "2E-3", "1_0.5", "1e400", "-1e400", "1e", "1.2.3",
		"99999999999999999999999", "-9223372036854775808", "9223372036854775807",
		"True", "False", "None", "true", "yes", "null",
		"'x'", `"x"`, `'a' "b"`, `'x' # comment`, "'x' 'y' z", `"tab\there"`, `'\x41\101\u00e9'`, `r'\n'`, `b'xy'`, `'''tri'''`,
		`f'x'`, `'\q'`, `'unclosed`,
		"[1, 'two', 3.5]", "[]", "[1,]", "(1, 2)", "(1)", "()", "(1,)", "{'k': 'v', 'n': 2}", "{}", "{'a': {'b': [1, {'c': None}]}}",
		"{1: 'one'}", "{'a': 1, 'a': 2}", "[1, 2", "[1 2]",
		"1+2", "1 + 2", "abc", "hello world", "a=b", "", " ", "# only a comment", "[1, # c",
		"--5", "-True", "-'a'", " 5", "5 ", "\t[1]", "ansible", "{{ jinja }}", "192.0.2.1", "10.0.0.0/8", "2001:db8::1", "08:00", "1:30",
	}
	// Ansible cannot use these: literal_eval gives complex numbers and sets.
	literalErrors = []string{"1j", "1+2j", "-1.5J", "{1, 2}", "{1}", "set()", "[{1}]"}
)

func TestINIValueMatchesPython(t *testing.T) {
	py := testenv.NeedCommand(t, "python3")
	const script = `
import ast, json, sys
out = []
for s in json.load(sys.stdin):
    try:
        v = ast.literal_eval(s)
    except (ValueError, SyntaxError):
        v = s
    if isinstance(v, bytes):
        v = v.decode()
    try:
        out.append(json.dumps(v, sort_keys=True))
    except (TypeError, ValueError):
        out.append("unusable")
print(json.dumps(out))
`
	want := runPython(t, py, script, append(literalCases, literalErrors...))
	for i, s := range append(literalCases, literalErrors...) {
		got := "unusable"
		if v, err := iniValue(s); err == nil {
			js, err := json.Marshal(pythonFloats(v))
			if err != nil {
				js = []byte("unusable")
			}
			got = string(js)
		}
		if sign, inf := map[string]int{"Infinity": 1, "-Infinity": -1}[want[i]]; inf {
			// Python writes inf as a bare Infinity, which JSON has not.
			if f, _ := must(iniValue(s)).(float64); !math.IsInf(f, sign) {
				t.Errorf("iniValue(%q) = %v, Python %s", s, f, want[i])
			}
			continue
		}
		if norm(got) != norm(want[i]) {
			t.Errorf("iniValue(%q) = %s, Python %s", s, got, want[i])
		}
	}
}

// norm spaces JSON as Python's json.dumps does, for a fair comparison.
func norm(js string) string {
	var v any
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return js
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return js
	}
	return strings.TrimSpace(buf.String())
}

var shlexCases = []string{
	`web1`, `web1 a=1 b=2`, `h x="a b" y='c d'`, `h x=a#b y=1`, `h # comment`, `h x="#not comment"`,
	`h x=a\ b`, `h x="a\"b"`, `h x='a\b'`, `h x="a\b"`, `h x=""`, `h ""`, `h x="unclosed`, `h x=\`,
	"h\tx=1", `h x="it's"`, `h x='say "hi"'`, `h x=a"b c"d`,
}

func TestShlexMatchesPython(t *testing.T) {
	py := testenv.NeedCommand(t, "python3")
	const script = `
import json, shlex, sys
out = []
for s in json.load(sys.stdin):
    try:
        out.append(json.dumps(shlex.split(s, comments=True)))
    except ValueError as e:
        out.append("error")
print(json.dumps(out))
`
	want := runPython(t, py, script, shlexCases)
	for i, s := range shlexCases {
		got := "error"
		if toks, err := shlexSplit(s); err == nil {
			js, _ := json.Marshal(toks)
			got = string(js)
		}
		if norm(got) != norm(want[i]) {
			t.Errorf("shlexSplit(%q) = %s, Python %s", s, got, want[i])
		}
	}
}

func runPython(t *testing.T, py, script string, in []string) []string {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var res []string
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(in) {
		t.Fatalf("python3 output %s: %v", out, err)
	}
	return res
}

func TestINIValueRefusesWhatAnsibleCannotUse(t *testing.T) {
	for _, s := range literalErrors {
		if _, err := iniValue(s); err == nil {
			t.Errorf("iniValue(%q): no error", s)
		}
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	if _, err := iniValue(deep); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Errorf("100 nested lists: %v", err)
	}
}

func must(v any, _ error) any { return v }
