package inventory

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errNotLiteral is Python's ValueError/SyntaxError from ast.literal_eval:
// Ansible's INI plugin then keeps the text as a string.
var errNotLiteral = errors.New("not a Python literal")

// shlexSplit splits an INI host line as Python's shlex.split(line,
// comments=True) does in POSIX mode: quotes group, backslash escapes, and a
// '#' outside quotes ends the line, even in the middle of a word.
func shlexSplit(line string) ([]string, error) {
	var tokens []string
	var tok strings.Builder
	inTok, quoted := false, false
	emit := func() {
		if inTok || quoted {
			tokens = append(tokens, tok.String())
		}
		tok.Reset()
		inTok, quoted = false, false
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			emit()
		case c == '#':
			emit()
			return tokens, nil
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("No escaped character")
			}
			i++
			tok.WriteRune(rs[i])
			inTok = true
		case c == '\'' || c == '"':
			quoted, inTok = true, true
			closed := false
			for i++; i < len(rs); i++ {
				if rs[i] == c {
					closed = true
					break
				}
				// Inside double quotes only \" and \\ are escapes.
				if c == '"' && rs[i] == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\') {
					i++
				} else if c == '"' && rs[i] == '\\' && i+1 >= len(rs) {
					return nil, errors.New("No escaped character")
				}
				tok.WriteRune(rs[i])
			}
			if !closed {
				return nil, errors.New("No closing quotation")
			}
		default:
			tok.WriteRune(c)
			inTok = true
		}
	}
	emit()
	return tokens, nil
}

// iniValue types an INI value as Ansible's _parse_value does: the value of
// ast.literal_eval when it is a literal, else the text unchanged. Literals
// Ansible loads but cannot use (complex numbers, sets) are errors.
func iniValue(s string) (any, error) {
	p := &pyParser{src: []rune(strings.TrimLeft(s, " \t"))}
	v, err := p.expr(0)
	if err == nil {
		p.space()
		if p.i < len(p.src) {
			err = errNotLiteral
		}
	}
	if errors.Is(err, errNotLiteral) {
		return s, nil
	}
	return v, err
}

// pyParser reads the subset of Python expressions ast.literal_eval accepts.
type pyParser struct {
	src []rune
	i   int
}

const maxLiteralDepth = maxDepth

func (p *pyParser) peek() rune {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return 0
}

// space skips blanks and a trailing comment, as Python's tokenizer does.
func (p *pyParser) space() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\f':
			p.i++
		case '#':
			p.i = len(p.src)
		default:
			return
		}
	}
}

func (p *pyParser) expr(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, fmt.Errorf("value nests deeper than %d levels", maxLiteralDepth)
	}
	p.space()
	c := p.peek()
	switch {
	case c == '[':
		p.i++
		items, _, err := p.items(']', depth)
		return items, err
	case c == '(':
		p.i++
		items, tuple, err := p.items(')', depth)
		if err == nil && !tuple && len(items) == 1 {
			return items[0], nil // (x) is x, (x,) a tuple
		}
		return items, err
	case c == '{':
		p.i++
		return p.dict(depth)
	case c == '-' || c == '+':
		p.i++
		p.space()
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		if c == '-' {
			v = negate(v)
		}
		return p.complexTail(v)
	case c >= '0' && c <= '9' || c == '.':
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		return p.complexTail(v)
	case c == '\'' || c == '"':
		return p.strings()
	case isIdentStart(c):
		start := p.i
		for p.i < len(p.src) && isIdentPart(p.src[p.i]) {
			p.i++
		}
		word := string(p.src[start:p.i])
		if p.peek() == '\'' || p.peek() == '"' {
			p.i = start
			return p.strings()
		}
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		case "set":
			p.space()
			if p.peek() == '(' {
				p.i++
				p.space()
				if p.peek() == ')' {
					return nil, errors.New("a Python set, which Ansible cannot use as a variable")
				}
			}
		}
	}
	return nil, errNotLiteral
}

// complexTail refuses `1+2j`, which literal_eval builds as a complex number.
func (p *pyParser) complexTail(v any) (any, error) {
	save := p.i
	p.space()
	if c := p.peek(); c == '+' || c == '-' {
		p.i++
		p.space()
		if _, err := p.number(); errors.Is(err, errComplex) {
			return nil, err
		}
		return nil, errNotLiteral
	}
	p.i = save
	return v, nil
}

func negate(v any) any {
	switch v := v.(type) {
	case int:
		if v == -v && v != 0 { // math.MinInt has no positive twin
			return new(big.Int).Neg(big.NewInt(int64(v)))
		}
		return -v
	case *big.Int:
		n := new(big.Int).Neg(v)
		if n.IsInt64() {
			return int(n.Int64())
		}
		return n
	case float64:
		return -v
	}
	return v
}

// items reads list or tuple elements up to end; tuple reports a top-level comma.
func (p *pyParser) items(end rune, depth int) ([]any, bool, error) {
	out, comma := []any{}, false
	for {
		p.space()
		if p.peek() == end {
			p.i++
			return out, comma, nil
		}
		v, err := p.expr(depth + 1)
		if err != nil {
			return nil, false, err
		}
		out = append(out, v)
		p.space()
		switch p.peek() {
		case ',':
			p.i++
			comma = true
		case end:
		default:
			return nil, false, errNotLiteral
		}
	}
}

func (p *pyParser) dict(depth int) (any, error) {
	out := map[string]any{}
	first := true
	for {
		p.space()
		if p.peek() == '}' {
			p.i++
			return out, nil
		}
		k, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.peek() != ':' {
			if first && (p.peek() == ',' || p.peek() == '}') {
				return nil, errors.New("a Python set, which Ansible cannot use as a variable")
			}
			return nil, errNotLiteral
		}
		first = false
		p.i++
		v, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		key, err := dictKey(k)
		if err != nil {
			return nil, err
		}
		out[key] = v
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			return nil, errNotLiteral
		}
	}
}

// dictKey spells a dict key as Python's json module writes it.
func dictKey(k any) (string, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case int:
		return strconv.Itoa(k), nil
	case *big.Int:
		return k.String(), nil
	case bool:
		return strconv.FormatBool(k), nil
	case nil:
		return "null", nil
	}
	return "", fmt.Errorf("dict key %v: want a string or integer", k)
}

var errComplex = errors.New("a Python complex number, which Ansible cannot use as a variable")

// number reads a Python int or float literal, underscores and 0x/0o/0b included.
func (p *pyParser) number() (any, error) {
	start := p.i
	for p.i < len(p.src) && (isIdentPart(p.src[p.i]) || p.src[p.i] == '.' ||
		(p.src[p.i] == '+' || p.src[p.i] == '-') && p.i > start && (p.src[p.i-1] == 'e' || p.src[p.i-1] == 'E') && !isPrefixed(p.src[start:p.i])) {
		p.i++
	}
	text := string(p.src[start:p.i])
	if strings.HasSuffix(text, "j") || strings.HasSuffix(text, "J") {
		num := text[:len(text)-1]
		if _, ok := pyFloat(num); ok || underscoresOK(num) && strings.Trim(num, "0123456789_") == "" {
			return nil, errComplex
		}
		return nil, errNotLiteral
	}
	if v, ok := pyInt(text); ok {
		return v, nil
	}
	if v, ok := pyFloat(text); ok {
		return v, nil
	}
	return nil, errNotLiteral
}

func isPrefixed(s []rune) bool {
	return len(s) >= 2 && s[0] == '0' && strings.ContainsRune("xXoObB", s[1])
}

// pyInt parses Python 3 integer literal syntax (no leading zeros in decimals).
func pyInt(s string) (any, bool) {
	base, digits := 10, s
	if isPrefixed([]rune(s)) {
		base = map[byte]int{'x': 16, 'o': 8, 'b': 2}[s[1]|0x20]
		digits = s[2:]
		if strings.HasPrefix(digits, "_") {
			digits = digits[1:]
		}
	} else if len(s) > 1 && s[0] == '0' && strings.Trim(s, "0_") != "" {
		return nil, false
	}
	if !underscoresOK(digits) {
		return nil, false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(digits, "_", ""), base)
	if !ok {
		return nil, false
	}
	if n.IsInt64() {
		return int(n.Int64()), true
	}
	return n, true
}

// underscoresOK: single underscores between digits only, as Python requires.
func underscoresOK(s string) bool {
	return s != "" && s[0] != '_' && s[len(s)-1] != '_' && !strings.Contains(s, "__")
}

func pyFloat(s string) (float64, bool) {
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if hasExp {
		exp = strings.TrimLeft(exp, "+-")
		if !underscoresOK(exp) || strings.Trim(exp, "0123456789_") != "" {
			return 0, false
		}
	}
	whole, frac, dot := strings.Cut(mant, ".")
	if !dot && !hasExp || whole == "" && frac == "" {
		return 0, false
	}
	for _, part := range []string{whole, frac} {
		if part != "" && (!underscoresOK(part) || strings.Trim(part, "0123456789_") != "") {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true // out of range is ±inf, as in Python
}

// strings reads one or more adjacent string literals and joins them.
func (p *pyParser) strings() (any, error) {
	var out strings.Builder
	kind := ""
	for {
		p.space()
		start := p.i
		for p.i < len(p.src) && isIdentStart(p.src[p.i]) {
			p.i++
		}
		prefix := strings.ToLower(string(p.src[start:p.i]))
		q := p.peek()
		if q != '\'' && q != '"' {
			p.i = start
			if kind == "" {
				return nil, errNotLiteral
			}
			return out.String(), nil
		}
		raw, bytesLit := strings.Contains(prefix, "r"), strings.Contains(prefix, "b")
		switch prefix {
		case "", "r", "u", "b", "br", "rb":
		default:
			return nil, errNotLiteral // f-strings are not literals
		}
		k := map[bool]string{true: "bytes", false: "str"}[bytesLit]
		if kind != "" && kind != k {
			return nil, errNotLiteral
		}
		kind = k
		s, err := p.quoted(q, raw, bytesLit)
		if err != nil {
			return nil, err
		}
		out.WriteString(s)
	}
}

func (p *pyParser) quoted(q rune, raw, bytesLit bool) (string, error) {
	triple := p.i+2 < len(p.src) && p.src[p.i+1] == q && p.src[p.i+2] == q
	if triple {
		p.i += 3
	} else {
		p.i++
	}
	var out strings.Builder
	for p.i < len(p.src) {
		c := p.src[p.i]
		if c == q && (!triple || p.i+2 < len(p.src) && p.src[p.i+1] == q && p.src[p.i+2] == q) {
			p.i += map[bool]int{true: 3, false: 1}[triple]
			return out.String(), nil
		}
		if bytesLit && c > 0x7f {
			return "", errNotLiteral
		}
		if c != '\\' {
			out.WriteRune(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.src) {
			return "", errNotLiteral
		}
		if raw {
			out.WriteRune(c)
			out.WriteRune(p.src[p.i+1])
			p.i += 2
			continue
		}
		n, err := p.escape(&out, bytesLit)
		if err != nil {
			return "", err
		}
		p.i += n
	}
	return "", errNotLiteral
}

// escape decodes the backslash sequence at p.i and returns its length.
func (p *pyParser) escape(out *strings.Builder, bytesLit bool) (int, error) {
	e := p.src[p.i+1]
	simple := map[rune]rune{'\\': '\\', '\'': '\'', '"': '"', 'a': 7, 'b': 8, 'f': 12, 'n': 10, 'r': 13, 't': 9, 'v': 11}
	if r, ok := simple[e]; ok {
		out.WriteRune(r)
		return 2, nil
	}
	hex := func(width int) (int, error) {
		if p.i+2+width > len(p.src) {
			return 0, errNotLiteral
		}
		v, err := strconv.ParseUint(string(p.src[p.i+2:p.i+2+width]), 16, 32)
		if err != nil || v > utf8.MaxRune {
			return 0, errNotLiteral
		}
		out.WriteRune(rune(v))
		return 2 + width, nil
	}
	switch {
	case e >= '0' && e <= '7':
		n := 1
		for n < 3 && p.i+1+n < len(p.src) && p.src[p.i+1+n] >= '0' && p.src[p.i+1+n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(string(p.src[p.i+1:p.i+1+n]), 8, 32)
		out.WriteRune(rune(v))
		return 1 + n, nil
	case e == 'x':
		return hex(2)
	case e == 'u' && !bytesLit:
		return hex(4)
	case e == 'U' && !bytesLit:
		return hex(8)
	case e == 'N' && !bytesLit:
		return 0, errNotLiteral // \N{NAME} needs the Unicode name table: kept as text
	}
	out.WriteRune('\\') // unknown escapes stay as written
	out.WriteRune(e)
	return 2, nil
}

func isIdentStart(c rune) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentPart(c rune) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
