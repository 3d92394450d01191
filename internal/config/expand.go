package config

import (
	"fmt"
	"regexp"
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

func unmark(s string) string {
	return strings.NewReplacer(string(openMark), "{", string(closeMark), "}").Replace(s)
}
