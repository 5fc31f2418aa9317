// Package redact owns how an error that may quote a value is shown: in
// status conditions, events and logs of the controllers, and in the CLI's
// build and diff output. A value here is anything read from a decrypted
// file, a Secret or a substitution; names (kinds, namespaces, object
// names, field paths, keys) are not values and are kept.
//
// The one policy, Error:
//
//   - An API server's error keeps its reason, code and the field paths of
//     its causes. Its message is kept only for reasons whose message the
//     server builds from names alone (NotFound, AlreadyExists, Conflict,
//     Forbidden other than an admission denial, Unauthorized, Gone,
//     timeouts, throttling, MethodNotAllowed, ServiceUnavailable): Invalid,
//     BadRequest, admission denials and the rest may quote the object
//     that was sent.
//   - Any other error (kustomize's, a YAML parser's) keeps its first line,
//     at most MaxLen bytes: the lines after it quote the document. A first
//     line that quotes file content (kustomize's "line [..] has invalid
//     utf8 bytes : KEY=value", "invalid literal source KEY=value") is cut
//     where the quote starts.
//
// Values known to the caller (a Git password) are removed with Values.
package redact

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxLen bounds the text kept of an error that is not the API server's.
const MaxLen = 500

// nameOnly are the API reasons whose messages name objects and users only.
var nameOnly = map[metav1.StatusReason]bool{
	metav1.StatusReasonNotFound:           true,
	metav1.StatusReasonAlreadyExists:      true,
	metav1.StatusReasonConflict:           true,
	metav1.StatusReasonForbidden:          true,
	metav1.StatusReasonUnauthorized:       true,
	metav1.StatusReasonGone:               true,
	metav1.StatusReasonTimeout:            true,
	metav1.StatusReasonServerTimeout:      true,
	metav1.StatusReasonTooManyRequests:    true,
	metav1.StatusReasonMethodNotAllowed:   true,
	metav1.StatusReasonServiceUnavailable: true,
}

// Error returns err's text without anything that may quote a value (see
// the package documentation).
func Error(err error) string {
	if err == nil {
		return ""
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return apiStatus(se.Status())
	}
	return unquote(FirstLine(err.Error()))
}

// quoting are first lines known to quote file content, with what replaces
// the quoting part.
var quoting = []struct {
	re   *regexp.Regexp
	with string
}{
	// kustomize's env reader prints the line as bytes and as text.
	{regexp.MustCompile(`line \[[^\]]*\] has invalid utf8 bytes.*`), "a line has invalid UTF-8 bytes (not shown)"},
	{regexp.MustCompile(`line .* has invalid utf8 bytes.*`), "a line has invalid UTF-8 bytes (not shown)"},
	{regexp.MustCompile(`invalid literal source .*`), "invalid literal source (not shown), expected key=value"},
}

func unquote(line string) string {
	for _, q := range quoting {
		if loc := q.re.FindStringIndex(line); loc != nil {
			return line[:loc[0]] + q.with
		}
	}
	return line
}

func apiStatus(s metav1.Status) string {
	if nameOnly[s.Reason] && s.Message != "" && !admissionDenial(s.Message) {
		return FirstLine(s.Message)
	}
	reason := s.Reason
	if reason == "" {
		reason = metav1.StatusReasonUnknown
	}
	out := fmt.Sprintf("%s (%d)", reason, s.Code)
	if s.Details != nil {
		var fields []string
		for _, c := range s.Details.Causes {
			if c.Field != "" {
				fields = append(fields, c.Field)
			}
		}
		if len(fields) > 0 {
			out += ": invalid " + strings.Join(fields, ", ")
		}
	}
	return out
}

// admissionDenial reports whether msg is an admission webhook's or a
// ValidatingAdmissionPolicy's denial, whose text the webhook or the
// policy's messageExpression writes from the object.
func admissionDenial(msg string) bool {
	return strings.Contains(msg, "admission webhook") || strings.Contains(msg, "denied request")
}

// FirstLine returns msg up to its first line break, at most MaxLen bytes
// ("..." marks a cut).
func FirstLine(msg string) string {
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > MaxLen {
		cut := MaxLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return msg
}

// Values replaces each of values (those of four bytes or more) in msg with
// "***".
func Values(msg string, values ...string) string {
	for _, v := range values {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}

// Reason is Error for a failed read of an object the caller names itself:
// "not found" for NotFound.
func Reason(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return Error(err)
}
