package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/simwatch/simwatch/internal/yamlread"
)

// ${VAR} is written as "$" U+E000 NAME U+E001 before parsing: "{" and "}"
// are flow indicators, so `{sk: ${HW_SK}}` would not parse as written. The
// marks are one rune each, like the braces, so every column stays true.
const (
	openMark  = '\uE000'
	closeMark = '\uE001'
)

var (
	varRef    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	markedRef = regexp.MustCompile("\\$\uE000([A-Za-z_][A-Za-z0-9_]*)\uE001")
)

// markRefs replaces the braces of each ${VAR} with the marks.
func markRefs(path string, raw []byte) ([]byte, error) {
	for i, line := range strings.SplitAfter(string(raw), "\n") {
		if c := strings.IndexAny(line, string([]rune{openMark, closeMark})); c >= 0 {
			return nil, &yamlread.Error{File: path, Line: i + 1, Col: utf8.RuneCountInString(line[:c]) + 1,
				Message: "the characters U+E000 and U+E001 are reserved for ${VAR} references"}
		}
	}
	return varRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		return []byte("$" + string(openMark) + string(m[2:len(m)-1]) + string(closeMark))
	}), nil
}

// expander expands the marked references in one scalar value, and
// remembers what each expanded value was written as, so that a message
// quoting a value can quote the file instead.
type expander struct {
	lookup  func(string) (string, bool)
	written map[string]string // quoted expanded value -> quoted value as written
	values  map[string]string // variable name -> its value, for mask
}

func (x *expander) expand(s string) (string, error) {
	if !strings.ContainsRune(s, openMark) {
		return s, nil
	}
	var unset []string
	out := markedRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m[1:], string([]rune{openMark, closeMark}))
		v, ok := x.lookup(name)
		if !ok {
			unset = append(unset, name)
		} else {
			if x.values == nil {
				x.values = map[string]string{}
			}
			x.values[name] = v
		}
		return v
	})
	if len(unset) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(unset, ", "))
	}
	x.written[strconv.Quote(out)] = strconv.Quote(unmark(s))
	return out, nil
}

// asWritten puts back, in a message, the ${VAR} form of any value it quotes.
func (x *expander) asWritten(msg string) string {
	for expanded, written := range x.written {
		msg = strings.ReplaceAll(msg, expanded, written)
	}
	return msg
}

// minMask is the shortest text mask replaces: shorter values (and fields
// of values) would garble every message and hide nothing.
const minMask = 4

// mask replaces, in a final message, every expanded value in any form a
// check may have quoted it (as is, trimmed of spaces and quotes, each of
// its lines and whitespace-separated fields) with its ${NAME}: a message
// from a parser or an expression compiler quotes what it was given, which
// asWritten cannot map back.
func (x *expander) mask(msg string) string {
	type form struct{ text, name string }
	var forms []form
	names := make([]string, 0, len(x.values))
	for name := range x.values {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic when two values share a form
	for _, name := range names {
		v := x.values[name]
		cands := []string{v, strings.TrimSpace(v), strings.Trim(v, " \t\r\n'\""), strconv.Quote(v)}
		for _, l := range strings.Split(v, "\n") {
			cands = append(cands, l, strings.TrimSpace(l), strings.Trim(l, " \t\r'\""))
		}
		for _, f := range strings.Fields(v) {
			cands = append(cands, f, strings.Trim(f, "'\""))
		}
		for _, c := range cands {
			if len(c) >= minMask {
				forms = append(forms, form{c, "${" + name + "}"})
			}
		}
	}
	if len(forms) == 0 {
		return msg
	}
	slices.SortStableFunc(forms, func(a, b form) int { return len(b.text) - len(a.text) })
	pairs := make([]string, 0, 2*len(forms))
	seen := map[string]bool{}
	for _, f := range forms {
		if !seen[f.text] {
			seen[f.text] = true
			pairs = append(pairs, f.text, f.name)
		}
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}

func unmark(s string) string {
	return strings.NewReplacer(string(openMark), "{", string(closeMark), "}").Replace(s)
}
