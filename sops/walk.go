package sops

import (
	"fmt"
	"strings"
	"time"
)

// leafFunc transforms one leaf. aad is the key path ("a:b:"), encrypted says
// whether the selection rules cover it.
type leafFunc func(v any, aad string, encrypted bool) (any, error)

type walker struct {
	r    *rules
	leaf leafFunc
	// slot is where the value passed to leaf is stored in the tree; for a
	// comment that is a mapping key, keyComment is that comment.
	slot       *any
	keyComment *Comment
}

func commentAAD(prefix string) string {
	if prefix == "" {
		return ":"
	}
	return prefix
}

func (w *walker) value(v any, prefix string, pathHit bool, comments [][]string) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case TreeBranch:
		return w.branch(v, prefix, pathHit, comments)
	case []any:
		return w.slice(v, prefix, pathHit, comments)
	case []byte:
		return w.leafAt(string(v), prefix, pathHit, comments, false)
	case string, int, float64, bool, time.Time:
		return w.leafAt(v, prefix, pathHit, comments, false)
	case Comment:
		return w.leafAt(v, prefix, pathHit, comments, true)
	}
	return nil, fmt.Errorf("unsupported value type %T at %s", v, displayPath(prefix))
}

func (w *walker) leafAt(v any, prefix string, pathHit bool, comments [][]string, isComment bool) (any, error) {
	aad := prefix
	if isComment || aad == "" {
		aad = commentAAD(prefix)
	}
	return w.leaf(v, aad, w.r.shouldEncrypt(pathHit, comments, isComment))
}

func (w *walker) slice(in []any, prefix string, pathHit bool, comments [][]string) ([]any, error) {
	if w.r.trackComments {
		comments = append(comments[:len(comments):len(comments)], nil)
	}
	for i, v := range in {
		c, isComment := v.(Comment)
		if isComment && w.r.trackComments {
			comments[len(comments)-1] = append(comments[len(comments)-1], c.Value)
		}
		w.slot, w.keyComment = &in[i], nil
		nv, err := w.value(v, prefix, pathHit, comments)
		if err != nil {
			return nil, err
		}
		in[i] = nv
		if !isComment && w.r.trackComments {
			comments[len(comments)-1] = nil
		}
	}
	return in, nil
}

func (w *walker) branch(in TreeBranch, prefix string, pathHit bool, comments [][]string) (TreeBranch, error) {
	if w.r.trackComments {
		comments = append(comments[:len(comments):len(comments)], nil)
	}
	for i, item := range in {
		if c, ok := item.Key.(Comment); ok {
			if w.r.trackComments {
				comments[len(comments)-1] = append(comments[len(comments)-1], c.Value)
			}
			w.slot, w.keyComment = &in[i].Key, &c
			out, err := w.leaf(c, commentAAD(prefix), w.r.shouldEncrypt(pathHit, comments, true))
			if err != nil {
				return nil, err
			}
			switch out := out.(type) {
			case Comment:
				out.Inline = c.Inline
				in[i].Key = out
			case string:
				in[i].Key = Comment{Value: out, Inline: c.Inline}
			default:
				return nil, fmt.Errorf("comment became %T", out)
			}
			continue
		}
		c, valueIsComment := item.Value.(Comment)
		if valueIsComment && w.r.trackComments {
			comments[len(comments)-1] = append(comments[len(comments)-1], c.Value)
		}
		key, ok := item.Key.(string)
		if !ok {
			return nil, fmt.Errorf("tree contains a non-string key (type %T) under %s; only string keys are supported", item.Key, displayPath(prefix))
		}
		hit := pathHit || (w.r.hasPathRule && w.r.keyHits(key))
		w.slot, w.keyComment = &in[i].Value, nil
		nv, err := w.value(item.Value, prefix+key+":", hit, comments)
		if err != nil {
			return nil, err
		}
		in[i].Value = nv
		if !valueIsComment && w.r.trackComments {
			comments[len(comments)-1] = nil
		}
	}
	return in, nil
}

// displayPath turns an AAD prefix "a:b:" into ["a"]["b"] for messages.
func displayPath(prefix string) string {
	if prefix == "" || prefix == ":" {
		return "the top level"
	}
	parts := strings.Split(strings.TrimSuffix(prefix, ":"), ":")
	var sb strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&sb, "[%q]", p)
	}
	return sb.String()
}

func (t *Tree) walk(leaf leafFunc) error {
	r, err := compileRules(&t.Metadata)
	if err != nil {
		return err
	}
	return t.walkWith(&walker{r: r, leaf: leaf})
}

func (t *Tree) walkWith(w *walker) error {
	for i, b := range t.Branches {
		nb, err := w.branch(b, "", false, nil)
		if err != nil {
			return err
		}
		t.Branches[i] = nb
	}
	return nil
}
