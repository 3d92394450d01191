package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/redact"
)

type leakySource struct{}

func (leakySource) Fetch(context.Context) (fleet.Snapshot, error) {
	return fleet.Snapshot{}, errors.New("GET https://x/?AccessKeyId=AKIDSECRET1: 403")
}

type leakyFinder struct{ leakySource }

func (leakyFinder) FindCards(context.Context, map[string]string) (map[string]bool, error) {
	return nil, errors.New("lookup with AKIDSECRET1 failed")
}

// TestRedactedSourceKeepsFinder: the poller confirms removals only with a
// source that can look cards up; masking its errors must not take that
// away (an earlier wrapper did, and removals went unconfirmed).
func TestRedactedSourceKeepsFinder(t *testing.T) {
	r := redact.New("AKIDSECRET1")
	src := redactSource(leakyFinder{}, r)
	f, ok := src.(poll.Finder)
	if !ok {
		t.Fatal("the wrapped source lost FindCards")
	}
	if _, err := f.FindCards(context.Background(), nil); err == nil || strings.Contains(err.Error(), "AKIDSECRET1") {
		t.Fatalf("FindCards error not masked: %v", err)
	}
	if _, err := src.Fetch(context.Background()); err == nil || strings.Contains(err.Error(), "AKIDSECRET1") {
		t.Fatalf("Fetch error not masked: %v", err)
	}
	if _, ok := redactSource(leakySource{}, r).(poll.Finder); ok {
		t.Fatal("a source without FindCards gained it")
	}
}
