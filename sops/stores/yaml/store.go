// Package yaml is the YAML store: it reads and writes YAML files as SOPS
// trees, keeping key order, comments and multiple documents, and writes the
// same bytes as sops 3.13 for the same tree.
package yaml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/lacre/lacre/sops"
)

// DefaultIndent is the indentation sops uses.
const DefaultIndent = 4

// Limits on untrusted input.
const (
	DefaultMaxSize = 64 << 20
	maxDepth       = 1000
	maxNodes       = 2_000_000
)

// Store reads and writes YAML.
type Store struct {
	// Indent is the output indentation (0: 4, like sops).
	Indent int
	// MaxSize bounds the input (0: DefaultMaxSize).
	MaxSize int
}

// New returns a YAML store with the given indentation (0: the default).
func New(indent int) *Store { return &Store{Indent: indent} }

var _ sops.Store = (*Store)(nil)

// ErrTooLarge is returned for input beyond the store's bounds.
var ErrTooLarge = errors.New("yaml input too large or too deeply nested")

type loader struct {
	nodes int
}

func (l *loader) count(depth int) error {
	l.nodes++
	if l.nodes > maxNodes || depth > maxDepth {
		return ErrTooLarge
	}
	return nil
}

func commentLines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line != "" {
			out = append(out, line[1:]) // drop exactly the '#'
		}
	}
	return out
}

func appendListComments(l []any, text string, inline bool) []any {
	for _, c := range commentLines(text) {
		l = append(l, sops.Comment{Value: c, Inline: inline})
	}
	return l
}

func appendMapComments(b sops.TreeBranch, text string, inline bool) sops.TreeBranch {
	for _, c := range commentLines(text) {
		b = append(b, sops.TreeItem{Key: sops.Comment{Value: c, Inline: inline}})
	}
	return b
}

func (l *loader) scalar(n *yaml.Node) (any, error) {
	// Fast path: plain strings (most values, and every ENC[...] value).
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		// yaml's message quotes the value: name the line and tag only.
		return nil, fmt.Errorf("line %d: cannot decode the value as %s", n.Line, n.Tag)
	}
	switch x := v.(type) {
	case uint64:
		// sops 3.13 refuses integers between 2^63 and 2^64-1 ("Cannot walk
		// value, unknown type: uint64"); larger ones are floats there too.
		return nil, fmt.Errorf("line %d: %w", n.Line, sops.ErrIntegerOutOfRange)
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x), nil
		}
		return float64(x), nil
	}
	return v, nil
}

func (l *loader) value(n *yaml.Node, commentsHandled bool, depth int) (any, error) {
	if err := l.count(depth); err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.SequenceNode:
		var out []any
		if !commentsHandled {
			out = appendListComments(out, n.HeadComment, false)
			out = appendListComments(out, n.LineComment, false)
		}
		for _, item := range n.Content {
			out = appendListComments(out, item.HeadComment, false)
			out = appendListComments(out, item.LineComment, true)
			v, err := l.value(item, true, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			out = appendListComments(out, item.FootComment, false)
		}
		if !commentsHandled {
			out = appendListComments(out, n.FootComment, false)
		}
		return out, nil
	case yaml.MappingNode:
		return l.branch(n, sops.TreeBranch{}, commentsHandled, depth+1)
	case yaml.ScalarNode:
		return l.scalar(n)
	case yaml.AliasNode:
		return l.value(n.Alias, false, depth+1)
	}
	return nil, nil
}

func (l *loader) branch(n *yaml.Node, b sops.TreeBranch, commentsHandled bool, depth int) (sops.TreeBranch, error) {
	if err := l.count(depth); err != nil {
		return nil, err
	}
	if !commentsHandled {
		b = appendMapComments(b, n.HeadComment, false)
		b = appendMapComments(b, n.LineComment, false)
	}
	var err error
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if b, err = l.branch(c, b, false, depth+1); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		return nil, errors.New("YAML documents that are sequences are not supported")
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			b = appendMapComments(b, k.HeadComment, false)
			b = appendMapComments(b, k.LineComment, false)
			scalarish := v.Kind == yaml.ScalarNode || v.Kind == yaml.AliasNode
			if scalarish {
				b = appendMapComments(b, v.HeadComment, false)
				b = appendMapComments(b, v.LineComment, true)
			}
			key, err := l.scalar(k)
			if err != nil {
				return nil, err
			}
			if ks := fmt.Sprint(key); k.Kind == yaml.ScalarNode {
				if seen[ks] && k.Value != "<<" {
					return nil, fmt.Errorf("line %d: mapping key %q already defined", k.Line, ks)
				}
				seen[ks] = true
			}
			val, err := l.value(v, scalarish, depth+1)
			if err != nil {
				return nil, err
			}
			b = append(b, sops.TreeItem{Key: key, Value: val})
			if scalarish {
				b = appendMapComments(b, v.FootComment, false)
			}
			b = appendMapComments(b, k.FootComment, false)
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return b, nil
		}
		return nil, errors.New("YAML documents that are values are not supported")
	case yaml.AliasNode:
		if b, err = l.branch(n.Alias, b, false, depth+1); err != nil {
			return nil, err
		}
	}
	if !commentsHandled {
		b = appendMapComments(b, n.FootComment, false)
	}
	return b, nil
}

// LoadPlainFile parses YAML documents. A file whose first document has a
// top-level `sops` key is refused with sops.ErrAlreadyEncrypted.
func (s *Store) LoadPlainFile(in []byte) (sops.TreeBranches, error) {
	out, err := s.load(in)
	if err != nil {
		return nil, err
	}
	if hasSopsKey(out[0]) {
		return nil, sops.ErrAlreadyEncrypted
	}
	return out, nil
}

// fastEnabled turns the fast path (fast.go) on; tests turn it off to
// compare with yaml.v3.
var fastEnabled = true

func (s *Store) load(in []byte) (sops.TreeBranches, error) {
	return s.loadWith(in, fastLoad)
}

func (s *Store) loadWith(in []byte, fast func([]byte) (sops.TreeBranches, bool)) (sops.TreeBranches, error) {
	max := s.MaxSize
	if max == 0 {
		max = DefaultMaxSize
	}
	if len(in) > max {
		return nil, ErrTooLarge
	}
	if fastEnabled {
		if docs, ok := fast(in); ok {
			return docs, nil
		}
	}
	var out sops.TreeBranches
	l := &loader{}
	d := yaml.NewDecoder(bytes.NewReader(in))
	for {
		var doc yaml.Node
		err := d.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %v", err)
		}
		b, err := l.branch(&doc, sops.TreeBranch{}, false, 0)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, sops.ErrNoDocuments
	}
	return out, nil
}

func hasSopsKey(b sops.TreeBranch) bool {
	for _, it := range b {
		if k, ok := it.Key.(string); ok && k == sops.MetadataKey {
			return true
		}
	}
	return false
}

// LoadEncryptedFile parses an encrypted YAML file: the metadata is read from
// the `sops` key of the first document and removed from every document.
func (s *Store) LoadEncryptedFile(in []byte) (sops.Tree, error) {
	branches, err := s.load(in)
	if err != nil {
		return sops.Tree{}, err
	}
	return sops.ExtractMetadata(branches)
}

// LoadEncryptedFileView is LoadEncryptedFile without copying in: the tree's
// strings may point into in, so in must not change while the tree is in
// use. For callers that decrypt a buffer of their own and keep only the
// output (a decrypt saves a copy of the whole file).
func (s *Store) LoadEncryptedFileView(in []byte) (sops.Tree, error) {
	branches, err := s.loadWith(in, fastLoadView)
	if err != nil {
		return sops.Tree{}, err
	}
	return sops.ExtractMetadata(branches)
}

func joinComments(cs []string) string { return "#" + strings.Join(cs, "\n#") }

func addHead(n *yaml.Node, cs []string) []string {
	if len(cs) > 0 {
		if n.HeadComment != "" {
			n.HeadComment = joinComments(cs) + "\n" + n.HeadComment
		} else {
			n.HeadComment = joinComments(cs)
		}
	}
	return nil
}

func addFoot(n *yaml.Node, cs []string) {
	if len(cs) > 0 {
		if n.FootComment != "" {
			n.FootComment += "\n" + joinComments(cs)
		} else {
			n.FootComment = joinComments(cs)
		}
	}
}

func addLine(n *yaml.Node, cs []string) []string {
	if len(cs) > 0 {
		if n.LineComment != "" {
			n.LineComment += "\n" + joinComments(cs)
		} else {
			n.LineComment = joinComments(cs)
		}
	}
	return nil
}

// toNode builds the node yaml.v3's Node.Encode would build, without its
// emit-and-reparse round trip (which dominated decryption time).
func toNode(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case sops.TreeBranch:
		n := &yaml.Node{Kind: yaml.MappingNode}
		return n, appendBranch(v, n)
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		return n, appendSequence(v, n)
	case string:
		return stringNode(v), nil
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.Itoa(v)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatBool(v)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "null"}, nil
	case float64:
		s := strconv.FormatFloat(v, 'g', -1, 64)
		switch s {
		case "+Inf":
			s = ".inf"
		case "-Inf":
			s = "-.inf"
		case "NaN":
			s = ".nan"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s}, nil
	case time.Time:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: v.Format(time.RFC3339Nano)}, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}

var base60Float = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

// stringNode quotes like yaml.v3's encoder: double quotes for strings that
// would read back as another type (including YAML 1.1 booleans and base 60
// floats), a literal block for multi-line strings, base64 for invalid UTF-8.
func stringNode(s string) *yaml.Node {
	if !utf8.ValidString(s) {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!binary", Value: base64.StdEncoding.EncodeToString([]byte(s))}
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		return n
	}
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF":
		n.Style = yaml.DoubleQuotedStyle
	default:
		if s != "" && strings.IndexByte(s, ':') >= 0 && (s[0] == '+' || s[0] == '-' || s[0] >= '0' && s[0] <= '9') && base60Float.MatchString(s) {
			n.Style = yaml.DoubleQuotedStyle
		}
	}
	return n
}

// appendItems appends the n items of a sequence (stride 1) or a mapping
// (stride 2) to parent, placing comments as yaml.v3 expects. comment
// returns item i's comment, when it is one; nodes turns item i into its
// node (first == last) or its key and value nodes. Comments before the
// first item go above the collection; inline comments go after the item
// before them; comments after the last item go below it.
func appendItems(parent *yaml.Node, n, stride int, comment func(i int) (sops.Comment, bool), nodes func(i int) (first, last *yaml.Node, err error)) error {
	var head, inline []string
	first := true
	for i := 0; i < n; i++ {
		if c, ok := comment(i); ok {
			if c.Inline {
				inline = append(inline, c.Value)
			} else {
				head = append(head, c.Value)
			}
			continue
		}
		if first {
			head = addHead(parent, head)
			first = false
		}
		f, l, err := nodes(i)
		if err != nil {
			return err
		}
		head = addHead(f, head)
		inline = addLine(l, inline)
		parent.Content = append(parent.Content, f)
		if l != f {
			parent.Content = append(parent.Content, l)
		}
	}
	head = append(head, inline...)
	if len(head) > 0 {
		if first {
			addHead(parent, head)
		} else {
			addFoot(parent.Content[len(parent.Content)-stride], head)
		}
	}
	return nil
}

func appendSequence(in []any, seq *yaml.Node) error {
	return appendItems(seq, len(in), 1, func(i int) (sops.Comment, bool) {
		c, ok := in[i].(sops.Comment)
		return c, ok
	}, func(i int) (*yaml.Node, *yaml.Node, error) {
		n, err := toNode(in[i])
		return n, n, err
	})
}

func appendBranch(b sops.TreeBranch, m *yaml.Node) error {
	return appendItems(m, len(b), 2, func(i int) (sops.Comment, bool) {
		c, ok := b[i].Key.(sops.Comment)
		return c, ok
	}, func(i int) (*yaml.Node, *yaml.Node, error) {
		if isMerge(b[i]) {
			v, err := toNode(b[i].Value)
			return mergeKeyNode(), v, err
		}
		k, err := toNode(b[i].Key)
		if err != nil {
			return nil, nil, err
		}
		v, err := toNode(b[i].Value)
		return k, v, err
	})
}

// isMerge reports whether it is a YAML merge key: the key "<<" with a
// mapping, or a sequence of mappings, as its value. sops 3.13 writes it as
// `!!merge <<:`; a "<<" key with any other value stays a quoted string key
// (sops writes `!!merge <<:` there too, which no YAML reader, sops
// included, reads back).
func isMerge(it sops.TreeItem) bool {
	if k, ok := it.Key.(string); !ok || k != "<<" {
		return false
	}
	switch v := it.Value.(type) {
	case sops.TreeBranch:
		return true
	case []any:
		n := 0
		for _, e := range v {
			switch e.(type) {
			case sops.Comment:
			case sops.TreeBranch:
				n++
			default:
				return false
			}
		}
		return n > 0
	}
	return false
}

// mergeKeyNode is a merge key with its tag written, as sops 3.13 writes it.
func mergeKeyNode() *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!merge", Value: "<<", Style: yaml.TaggedStyle}
}

func (s *Store) indent() int {
	if s.Indent > 0 {
		return s.Indent
	}
	return DefaultIndent
}

// chunkPairs is how many top-level pairs are emitted per encoder run.
// yaml.v3's emitter keeps every event of a document in one growing queue,
// which made large files slow; top-level pairs of a block mapping print
// independently, so a document is emitted in slices of pairs.
var chunkPairs = 64

// EmitPlainFile writes the documents as YAML.
func (s *Store) EmitPlainFile(branches sops.TreeBranches) ([]byte, error) {
	if fastEnabled {
		if out, ok := fastEmit(branches, s.indent()); ok {
			return out, nil
		}
	}
	var buf bytes.Buffer
	for i, b := range branches {
		m := &yaml.Node{Kind: yaml.MappingNode}
		if err := appendBranch(b, m); err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		if err := s.emitMapping(&buf, m); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func (s *Store) emitMapping(buf *bytes.Buffer, m *yaml.Node) error {
	pairs := m.Content
	for start := 0; start < len(pairs) || start == 0; start += 2 * chunkPairs {
		end := min(start+2*chunkPairs, len(pairs))
		part := &yaml.Node{Kind: yaml.MappingNode, Content: pairs[start:end]}
		if start == 0 {
			part.HeadComment, part.LineComment = m.HeadComment, m.LineComment
		}
		if end == len(pairs) {
			part.FootComment = m.FootComment
		}
		e := yaml.NewEncoder(buf)
		e.SetIndent(s.indent())
		doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{part}}
		if err := e.Encode(doc); err != nil {
			return fmt.Errorf("could not write YAML: %v", err)
		}
		if err := e.Close(); err != nil {
			return err
		}
		if end == len(pairs) {
			break
		}
	}
	return nil
}

// EmitEncryptedFile writes the documents with the metadata appended to each.
func (s *Store) EmitEncryptedFile(t sops.Tree) ([]byte, error) {
	meta := t.Metadata.Branch()
	branches := make(sops.TreeBranches, len(t.Branches))
	for i, b := range t.Branches {
		nb := make(sops.TreeBranch, len(b), len(b)+1)
		copy(nb, b)
		branches[i] = append(nb, sops.TreeItem{Key: sops.MetadataKey, Value: meta})
	}
	return s.EmitPlainFile(branches)
}

// EmitValue writes one value: a string as is, anything else as YAML.
func (s *Store) EmitValue(v any) ([]byte, error) {
	if str, ok := v.(string); ok {
		return []byte(str), nil
	}
	n, err := toNode(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(s.indent())
	if err := e.Encode(n); err != nil {
		return nil, err
	}
	e.Close()
	return buf.Bytes(), nil
}
