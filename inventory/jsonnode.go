package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"gopkg.in/yaml.v3"
)

// jsonNode reads a JSON document into the node tree the YAML code walks, with
// lines, so a JSON file is typed as Python's json module types it (Ansible
// tries json before YAML) and its errors still name file:line. yaml.v3 alone
// would refuse JSON escapes YAML lacks, such as \/, and pair no surrogates.
func jsonNode(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	newlines := []int{}
	for i, c := range data {
		if c == '\n' {
			newlines = append(newlines, i)
		}
	}
	line := func() int { return sort.SearchInts(newlines, int(dec.InputOffset())) + 1 }
	var read func(depth int) (*yaml.Node, error)
	read = func(depth int) (*yaml.Node, error) {
		if depth > maxDepth {
			return nil, fmt.Errorf("line %d: nesting deeper than %d levels", line(), maxDepth)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		n := &yaml.Node{Kind: yaml.ScalarNode, Line: line()}
		switch tok := tok.(type) {
		case json.Delim:
			end := json.Delim(']')
			n.Kind = yaml.SequenceNode
			if tok == '{' {
				end, n.Kind = '}', yaml.MappingNode
			}
			for dec.More() {
				if n.Kind == yaml.MappingNode {
					k, err := dec.Token()
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Tag: "!!str", Value: k.(string), Line: line()})
				}
				v, err := read(depth + 1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
			if tok, err := dec.Token(); err != nil || tok != end {
				return nil, fmt.Errorf("line %d: unterminated %c", line(), end)
			}
		case string:
			n.Style, n.Tag, n.Value = yaml.DoubleQuotedStyle, "!!str", tok
		case json.Number:
			n.Value = tok.String()
		case bool:
			n.Value = fmt.Sprint(tok)
		case nil:
			n.Value = "null"
		}
		return n, nil
	}
	top, err := read(1)
	if err == nil {
		if _, err = dec.Token(); !errors.Is(err, io.EOF) {
			err = errors.New("data after the JSON document")
		} else {
			err = nil
		}
	}
	return top, err
}
