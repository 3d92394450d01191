package slack

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// hostile15Context is the text of a message's context block.
func hostile15Context(t *testing.T, blocks []slack.Block) string {
	cb, ok := blocks[len(blocks)-1].(*slack.ContextBlock)
	require.True(t, ok)
	return cb.ContextElements.Elements[0].(*slack.TextBlockObject).Text
}

// slackLinks reads <url|text> links as Slack does: the url ends at the first
// | or >, and its &amp; &lt; &gt; are unescaped.
var slackLink = regexp.MustCompile(`<([^|>]*)(?:\|([^>]*))?>`)

func slackLinks(s string) [][2]string {
	var out [][2]string
	for _, m := range slackLink.FindAllStringSubmatch(s, -1) {
		u := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(m[1])
		out = append(out, [2]string{u, m[2]})
	}
	return out
}

// The deep link of a card whose id holds Slack's markup characters leads to
// that card's page, and is the message's only link.
func TestHostile15DeepLinkLeadsToItsCard(t *testing.T) {
	for _, id := range []string{"a|b", "a>b", "a<b", "a b", "a&b", "x&amp;y", "x&lt;y", "<https://evil.example|x>", "a%2Fb", "a/b", "a?b#c"} {
		e := event.Event{ID: "e", Kind: event.KindFiring, Rule: "low", Severity: "warning", Provider: "hw", Entity: "card",
			EntityID: id, ICCID: "8986", Summary: "low", Values: json.RawMessage(`{}`)}
		blocks, _ := message([]event.Event{e}, "https://simwatch.example/")
		links := slackLinks(hostile15Context(t, blocks))
		require.Len(t, links, 1, "id %q: %v", id, links)
		u, err := url.Parse(links[0][0])
		require.NoError(t, err, id)
		require.Equal(t, "simwatch.example", u.Host, id)
		require.Equal(t, "open in simwatch", links[0][1], id)
		rest, ok := strings.CutPrefix(u.EscapedPath(), "/cards/hw/")
		require.True(t, ok, "id %q: %s", id, u)
		got, err := url.PathUnescape(rest)
		require.NoError(t, err)
		require.Equal(t, id, got, "the link leads to another card's page: %s", links[0][0])
	}
}

// An entity id (of a pool, a rule) is shown in the message's fields: it
// must not become a link or a mention there.
func TestHostile15EntityIDInFieldsIsNoLink(t *testing.T) {
	for _, ent := range []string{"pool", "rule"} {
		e := event.Event{ID: "e", Kind: event.KindFiring, Rule: "low", Severity: "warning", Provider: "hw", Entity: ent,
			EntityID: "<https://evil.example|open in simwatch> <!channel>", Summary: "low", Values: json.RawMessage(`{}`)}
		for _, f := range fields(&e) {
			require.Empty(t, slackLinks(f.Text), "%s field %q links or pings", ent, f.Text)
		}
	}
}
