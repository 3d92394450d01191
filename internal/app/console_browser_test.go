package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// watchedCard is the card (by index into the fleet) tagged "watch" before
// the first cycle: card_watched fires for it.
const watchedCard = 1

func tagWatched(f *sim.Fleet, iccids []string) {
	tag := "watch"
	if err := f.PatchCard(iccids[watchedCard], sim.CardPatch{Tags: &tag}); err != nil {
		panic(err)
	}
}

// cardPath and poolPath are where the console shows one card (by the
// provider's card id) and one pool.
func cardPath(provider, id string) string { return "/cards/" + provider + "/" + id }
func poolPath(provider string, id int64) string {
	return fmt.Sprintf("/pools/%s/%d", provider, id)
}

// The console in a real browser (Debian's chromium, headless): one daemon
// over a simulated fleet, one browser, a tab per subtest. Every tab fails
// its subtest on any console error, warning or uncaught exception.
func TestConsoleBrowser(t *testing.T) {
	b := newBrowser(t)
	r := newConsoleRig(t, rigOptions{patch: tagWatched})
	watched := r.iccids[watchedCard]
	watchedID := r.card(watchedCard).ID

	// The rig itself: a page's console error and uncaught exception reach
	// the test (which would fail it; here they are forgiven).
	t.Run("console errors are seen", func(t *testing.T) {
		tb := b.newTab(t, r)
		tb.open("/")
		eval[chromedp.Void](tb, `console.error("rig-check-error"); setTimeout(() => { throw new Error("rig-check-throw"); }, 0)`)
		require.Eventually(t, func() bool {
			m := strings.Join(tb.consoleMessages(), "\n")
			return strings.Contains(m, "rig-check-error") && strings.Contains(m, "rig-check-throw")
		}, 10*time.Second, 10*time.Millisecond)
		tb.forgive("rig-check-")
	})

	t.Run("overview shows firing alerts", func(t *testing.T) {
		tb := b.newTab(t, r)
		tb.open("/")
		text := tb.text()
		require.Contains(t, text, "Firing alerts")
		require.Contains(t, text, "huawei-gsl", "the provider is on the overview")
		// card_watched, for one card, is the only critical rule firing.
		require.Equal(t, "1", eval[string](tb, `document.querySelector(".sev-critical .n, .sev-critical").innerText.trim().split(/\s/)[0]`),
			"the overview counts one critical alert")
		// Its count leads to the alert itself.
		ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
			chromedp.Evaluate[chromedp.Void](`document.querySelector("a.sev-critical").click()`)))
		require.NoError(t, err, "following the critical count")
		require.Equal(t, "/alerts", eval[string](tb, `location.pathname`))
		text = tb.text()
		require.Contains(t, text, "card_watched")
		require.Contains(t, text, watched)
	})

	t.Run("card page draws its chart", func(t *testing.T) {
		tb := b.newTab(t, r)
		tb.open(cardPath("hw", watchedID))
		require.Contains(t, tb.text(), watched)
		tb.waitFor("the usage chart", chartDrawn)
	})

	t.Run("pool page draws its chart", func(t *testing.T) {
		tb := b.newTab(t, r)
		tb.open(poolPath("hw", r.pools[0]))
		require.Contains(t, tb.text(), fmt.Sprint(r.pools[0]))
		tb.waitFor("the usage chart", chartDrawn)
	})

	t.Run("every page loads without console errors", func(t *testing.T) {
		tb := b.newTab(t, r)
		for _, path := range consolePages(r) {
			tb.open(path)
			title := eval[string](tb, `document.title`)
			require.NotContains(t, title, "Not Found", path)
			require.NotContains(t, title, "Internal Server Error", path)
			require.Empty(t, tb.consoleMessages(), "console errors on %s", path)
		}
	})

	t.Run("usable on a phone", func(t *testing.T) {
		tb := b.newTab(t, r)
		const phone = 390
		require.NoError(t, chromedp.Do(tb.ctx, chromedp.EmulateViewport(phone, 844, chromedp.EmulateMobile)))
		// A phone's browser zooms out to show a page wider than the screen
		// (and window.innerWidth grows with it): the page's width is measured
		// against the screen's.
		const width = `document.documentElement.scrollWidth`
		for _, path := range consolePages(r) {
			tb.open(path)
			// Wide tables scroll inside their .table-wrap, not the page.
			w := eval[int](tb, width)
			require.LessOrEqual(t, w, phone, "%s scrolls sideways on a %dpx wide phone (page %dpx wide)", path, phone, w)
		}
		// The measure sees a page that is too wide.
		eval[chromedp.Void](tb, `(() => { const d = document.createElement("div"); d.style.width = "800px"; d.style.height = "1px"; document.body.append(d); })()`)
		require.Greater(t, eval[int](tb, width), phone, "an 800px wide element makes the page wider than the phone")
	})

	// Last: it changes what is firing.
	t.Run("a silence made in the UI mutes the next event", func(t *testing.T) {
		silenceFromUI(t, b.newTab(t, r), r)
	})

	t.Run("sign-in with tokens", func(t *testing.T) { signIn(t, b) })
}

// chartDrawn holds when the chart container holds a drawn canvas with a
// size (uPlot draws into one).
const chartDrawn = `(() => { const c = document.querySelector(".chart canvas"); return c && c.width > 0 && c.height > 0 && c.getBoundingClientRect().width > 0; })()`

// consolePages are the console's pages, one of each kind.
func consolePages(r *consoleRig) []string {
	return []string{"/", "/alerts", "/events", "/silences", "/deadletters", "/actions",
		cardPath("hw", r.card(watchedCard).ID), poolPath("hw", r.pools[0])}
}

// silenceFromUI silences the watched card's alert with the alerts page's
// form, then changes the fleet so that two events come: the watched card's
// alert resolving (matched by the silence: recorded as muted, not sent)
// and another card's suspension (matched by nothing: sent).
func silenceFromUI(t *testing.T, tb *tab, r *consoleRig) {
	suspended := r.activeCard(watchedCard)
	watched, other := r.iccids[watchedCard], r.iccids[suspended]
	require.True(t, r.hook.got("firing", "card_watched", watched), "the watched card's alert went out before the silence")
	tb.open("/alerts")
	require.Contains(t, tb.text(), watched)

	// The silence form of the watched card's alert: the one whose fields
	// mention the card, or else the page's one form with a match field.
	form := fmt.Sprintf(`(() => {
		const forms = [...document.querySelectorAll('form[data-api$="/api/v1/silences"]')];
		return forms.find(f => [...f.elements].some(e => (e.value || "").includes(%q))) ||
			forms.find(f => f.closest("tr, li, article") && f.closest("tr, li, article").innerText.includes(%q)) ||
			(forms.length === 1 ? forms[0] : null);
	})()`, watched, watched)
	tb.waitFor("a silence form for "+watched, form)
	const comment = "browser test: maintenance on the watched card"
	fill := fmt.Sprintf(`(() => {
		const f = %s;
		const set = (name, v) => { const e = f.elements[name]; if (!e) throw new Error("the silence form has no field " + name); e.value = v; };
		if (f.elements.match && !f.elements.match.value) set("match", %q);
		set("comment", %q);
		set("for", "2h");
		return f.elements.match ? f.elements.match.value : "";
	})()`, form, `rule == "card_watched" && iccid == "`+watched+`"`, comment)
	match := eval[string](tb, fill)
	t.Logf("silence match from the form: %s", match)
	// Submitting sends the form to the API, which reloads the page.
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(%s).requestSubmit()`, form))))
	if err != nil {
		t.Fatalf("the page did not reload after the silence was submitted (%v); it shows: %s", err,
			eval[string](tb, `[...document.querySelectorAll(".result")].map(e => e.innerText).join(" | ")`))
	}
	var sl store.Silence
	list, err := r.store().Silences()
	require.NoError(t, err)
	for _, s := range list {
		if s.Comment == comment {
			sl = s
		}
	}
	require.NotEmpty(t, sl.ID, "the silence is stored: %+v", list)
	require.InDelta(t, 2*time.Hour, time.Until(sl.EndsAt), float64(time.Minute), "it lasts the 2h asked for")
	// The silences page lists it.
	tb.open("/silences")
	require.Contains(t, tb.text(), comment)

	r.patchCard(watchedCard, `{"tag_names": ""}`)                      // card_watched resolves: silenced
	r.patchCard(suspended, `{"sim_status": 14, "operator_status": 5}`) // card_suspended: sent
	require.Eventually(t, func() bool { return r.hook.got("transition", "card_suspended", other) },
		20*time.Second, 20*time.Millisecond, "the event no silence matches went out")
	require.Eventually(t, func() bool {
		evs, err := r.store().Events(store.EventFilter{Rule: "card_watched", ICCID: watched, Kind: "resolved"})
		return err == nil && len(evs) == 1 && evs[0].Silenced == sl.ID
	}, 20*time.Second, 20*time.Millisecond, "the watched card's resolution is recorded as muted by the silence")
	require.False(t, r.hook.got("resolved", "card_watched", watched), "the silenced event was not sent")

	// The history page says so too.
	tb.open("/events?kind=resolved&rule=card_watched&iccid=" + watched)
	require.Contains(t, tb.text(), "silenced by "+sl.ID)
}

// signIn: with http.tokens, the console asks for a token; a wrong one is
// refused, a read token sees the pages but no forms, an admin token sees
// the forms.
func signIn(t *testing.T, b *browser) {
	r := newConsoleRig(t, rigOptions{tokens: true, patch: tagWatched})
	login := func(tb *tab, token string) {
		tb.open("/alerts")
		require.Contains(t, eval[string](tb, `location.pathname`), "/login", "a page without a session sends to the sign-in")
		ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
		defer cancel()
		_, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`(() => { const f = document.querySelector('form[action="/login"]'); f.elements.token.value = %q; f.requestSubmit(); })()`, token))))
		require.NoError(t, err, "signing in")
	}

	t.Run("wrong token", func(t *testing.T) {
		tb := b.newTab(t, r)
		login(tb, "not-a-token-of-this-watcher")
		require.Equal(t, "/login", eval[string](tb, `location.pathname`))
		require.Contains(t, tb.text(), "not one of this watcher's http.tokens")
		tb.open("/")
		require.Equal(t, "/login", eval[string](tb, `location.pathname`), "still no session")
		// The 401 of the refused sign-in is a console error the browser logs
		// itself; it is what should happen.
		tb.forgive("401")
	})

	t.Run("read token sees no forms", func(t *testing.T) {
		tb := b.newTab(t, r)
		login(tb, rigReadToken)
		require.Equal(t, "/alerts", eval[string](tb, `location.pathname`), "back where the sign-in started")
		require.Contains(t, tb.text(), "viewer")
		require.Contains(t, tb.text(), r.iccids[watchedCard])
		for _, path := range []string{"/alerts", "/silences", "/deadletters", cardPath("hw", r.card(watchedCard).ID)} {
			tb.open(path)
			require.Zero(t, eval[int](tb, `document.querySelectorAll("form[data-api]").length`), "%s shows a change form to a read token", path)
		}
	})

	t.Run("admin token sees the forms", func(t *testing.T) {
		tb := b.newTab(t, r)
		login(tb, rigAdminToken)
		require.Equal(t, "/alerts", eval[string](tb, `location.pathname`))
		require.Positive(t, eval[int](tb, `document.querySelectorAll('form[data-api$="/api/v1/silences"]').length`), "the silence form")
	})
}

// The README's screenshots: a full-page PNG of the overview with firing
// alerts, and beside it (console-card.png) one of a card page with its
// chart. They go to SIMWATCH_SCREENSHOT=path/console.png when set (how the
// README's were made), else to a temporary directory: every run proves
// they can be made.
func TestConsoleScreenshot(t *testing.T) {
	out := os.Getenv("SIMWATCH_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "console.png")
	}
	b := newBrowser(t)
	r := newConsoleRig(t, rigOptions{cards: 200, patch: tagWatched})
	tb := b.newTab(t, r)
	require.NoError(t, chromedp.Do(tb.ctx, chromedp.EmulateViewport(1200, 800)))
	shot := func(path, file string) {
		tb.open(path)
		if strings.HasPrefix(path, "/cards/") {
			tb.waitFor("the usage chart", chartDrawn)
		}
		png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "%s: not a PNG", path)
		require.Greater(t, len(png), 10_000, "%s: a page that drew nothing", path)
		require.NoError(t, os.WriteFile(file, png, 0o644))
		t.Logf("%s: %s, %d KB", path, file, len(png)/1024)
	}
	shot("/", out)
	shot(cardPath("hw", r.card(watchedCard).ID), strings.TrimSuffix(out, ".png")+"-card.png")
}
