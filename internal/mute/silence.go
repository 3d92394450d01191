package mute

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/file"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// CheckMatch type-checks a match expression (a silence's, or an inhibit
// rule's source_match or target_match) as NewSilence and NewInhibitor do.
// The error is one line, e.g. "unknown name rulee (did you mean rule?) at
// column 1 of the expression", for config errors that name the file line.
func CheckMatch(match string) error {
	_, err := compile(match)
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 1 {
			return fmt.Errorf("%s at line %d, column %d of the expression", fe.Message, fe.Line, fe.Column+1)
		}
		return fmt.Errorf("%s at column %d of the expression", fe.Message, fe.Column+1)
	}
	return err
}

// NewSilence makes a silence starting at now and lasting d. The match must
// compile (see Env): a misspelt name is an error here, and so are loops
// over literal ranges that provably exceed the expression budget (see
// rules.CheckLoops).
func NewSilence(match, comment string, d time.Duration, now time.Time) (store.Silence, error) {
	if _, err := compile(match); err != nil {
		return store.Silence{}, fmt.Errorf("silence match: %w", err)
	}
	if d <= 0 {
		return store.Silence{}, errors.New("silence: the duration must be positive")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return store.Silence{ID: hex.EncodeToString(b[:]), Match: match, Comment: comment, CreatedAt: now, EndsAt: now.Add(d)}, nil
}

// SilenceSet is the silences active at one instant, compiled once, for
// matching many events. It is safe for concurrent use.
//
// Each match runs under the expression budget (see rules.BudgetOptions). A
// silence whose match goes over it mutes nothing: it does not match that
// event, nor any later one of the set, so that a hostile silence costs its
// budget once per set rather than once per event.
type SilenceSet struct {
	clock    clock
	needs    needs
	silences []compiledSilence
}

type compiledSilence struct {
	id     string
	p      *program
	failed *atomic.Bool // went over its budget: skipped from then on
}

// Silences compiles the silences active at now, in order. A stored silence
// whose match no longer compiles is skipped: it mutes nothing.
func Silences(silences []store.Silence, now time.Time) *SilenceSet {
	s := &SilenceSet{clock: newClock(now)}
	for _, sl := range silences {
		if !sl.Active(now) {
			continue
		}
		p, err := compile(sl.Match)
		if err != nil {
			continue
		}
		s.silences = append(s.silences, compiledSilence{sl.ID, p, new(atomic.Bool)})
		s.needs = s.needs.or(p.needs)
	}
	return s
}

// Len is the number of active silences in the set.
func (s *SilenceSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.silences)
}

// Match returns the id of the first silence that matches e, or "". A
// silence over its budget does not match; MatchErr reports it.
func (s *SilenceSet) Match(e *event.Event) (id string) {
	id, _ = s.MatchErr(e)
	return id
}

// MatchErr is Match, and also returns, once per silence of the set, the
// error of a silence whose match went over its budget
// (errors.Is(err, rules.ErrBudget)), naming the silence, for the caller to
// log: the silence mutes nothing from then on.
func (s *SilenceSet) MatchErr(e *event.Event) (id string, err error) {
	if s.Len() == 0 || e == nil {
		return "", nil
	}
	env := newEnv(e, &s.clock, s.needs)
	var errs []error
	for _, sl := range s.silences {
		if sl.failed.Load() {
			continue
		}
		ok, budget := sl.p.run(env)
		if budget != nil {
			if sl.failed.CompareAndSwap(false, true) {
				errs = append(errs, fmt.Errorf("silence %s mutes nothing: %w", sl.id, budget))
			}
			continue
		}
		if ok {
			return sl.id, errors.Join(errs...)
		}
	}
	return "", errors.Join(errs...)
}
