package linkcard_test

// Hostile ListCardInfo answers against promise 1 (complete listing, no id
// twice, required keys, no redirects).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/linkcard"
)

func lcCard(iccid string) string {
	return fmt.Sprintf(`{"Iccid":%q,"Status":"30","OsStatus":"1","DataType":"singlecard","DataLevel":"100MB","PeriodAddFlow":"10MB","PeriodRestFlow":"90MB"}`, iccid)
}

func lcPage(no, pageCount, total int, cards ...string) string {
	return fmt.Sprintf(`{"Code":"200","Success":true,"RequestId":"r","Data":{"PageNo":%d,"PageSize":10,"PageCount":%d,"Total":%d,"List":[%s]}}`,
		no, pageCount, total, strings.Join(cards, ","))
}

func lcFetch(t *testing.T, pages map[int]string) ([]string, error) {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("PageNo"))
		if b, ok := pages[n]; ok {
			if strings.HasPrefix(b, "REDIRECT ") {
				w.Header().Set("Location", strings.TrimPrefix(b, "REDIRECT "))
				w.WriteHeader(http.StatusFound)
				return
			}
			_, _ = w.Write([]byte(b))
			return
		}
		_, _ = w.Write([]byte(lcPage(n, 1, 0)))
	}))
	t.Cleanup(ts.Close)
	c, err := linkcard.New(linkcard.Options{Name: "ali", Endpoint: ts.URL, AccessKeyID: "k", AccessKeySecret: "s", PageSize: 10,
		Rate: 1000, Retries: -1, ListAttempts: -1, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	require.NoError(t, err)
	snap, err := c.Fetch(context.Background())
	var ids []string
	for _, cd := range snap.Cards {
		ids = append(ids, strconv.Quote(cd.ID))
	}
	return ids, err
}

// Regression: a hostile tester found this.
// wire.go: the Iccid is trimmed and upper-cased, a blank one refused).
// LinkCard's card id is the Iccid string taken verbatim. One card listed as
// "89860012345678901234" and as "89860012345678901234 " (or with the
// trailing hex digit in another case, as ICCIDs are sometimes written)
// passes the "no id twice" check: the listing has two cards where the
// provider has one, and a later listing that settles on one spelling makes
// the other "absent", then "removed".
func TestAttackLinkCardIccidVariantsCountTwice(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"trailing space", "89860012345678901234", "89860012345678901234 "},
		{"leading space", "89860012345678901234", " 89860012345678901234"},
		{"case of the hex digit", "8986001234567890123F", "8986001234567890123f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := lcFetch(t, map[int]string{1: lcPage(1, 1, 2, lcCard(tc.a), lcCard(tc.b))})
			require.Error(t, err, "one card listed twice under two spellings of its id: %v", ids)
		})
	}
}

// Regression: a hostile tester found this.
// A blank Iccid ("   ") is a missing id, yet only "" is refused: the card
// enters the fleet with id "   ".
func TestAttackLinkCardBlankIccidAccepted(t *testing.T) {
	ids, err := lcFetch(t, map[int]string{1: lcPage(1, 1, 1, lcCard("   "))})
	require.Error(t, err, "a blank Iccid is no card id: %v", ids)
}

// Held: the listing checks catch LinkCard's paging lies.
func TestAttackLinkCardHostilePages(t *testing.T) {
	ten := func(from int) []string {
		var out []string
		for i := range 10 {
			out = append(out, lcCard(fmt.Sprintf("8986%016d", from+i)))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		pages map[int]string
		want  string
	}{
		{"PageCount lies", map[int]string{1: lcPage(1, 1, 15, ten(0)...), 2: lcPage(2, 1, 15, ten(10)[:5]...)}, "PageCount"},
		{"Total 0 with cards", map[int]string{1: lcPage(1, 1, 0, ten(0)[:3]...)}, "want 0"},
		{"negative Total", map[int]string{1: lcPage(1, 1, -1, ten(0)[:3]...)}, "Total -1"},
		{"Total as a string", map[int]string{1: strings.Replace(lcPage(1, 1, 3, ten(0)[:3]...), `"Total":3`, `"Total":"3"`, 1)}, "Total"},
		{"Total missing", map[int]string{1: strings.Replace(lcPage(1, 1, 3, ten(0)[:3]...), `"Total":3,`, ``, 1)}, "Total"},
		{"PageCount missing", map[int]string{1: strings.Replace(lcPage(1, 1, 3, ten(0)[:3]...), `"PageCount":1,`, ``, 1)}, "PageCount"},
		{"List missing", map[int]string{1: `{"Code":"200","Success":true,"Data":{"PageNo":1,"PageSize":10,"PageCount":1,"Total":3}}`}, "List"},
		{"Data missing", map[int]string{1: `{"Code":"200","Success":true}`}, "Data"},
		{"Success false under 200", map[int]string{1: `{"Code":"Forbidden","Success":false,"ErrorMessage":"no"}`}, "Forbidden"},
		{"the same card on two pages", map[int]string{1: lcPage(1, 2, 11, ten(0)...), 2: lcPage(2, 2, 11, ten(0)[0])}, "twice"},
		{"Iccid a number", map[int]string{1: lcPage(1, 1, 1, `{"Iccid":8986,"Status":"30"}`)}, "page"},
		{"Status a number", map[int]string{1: lcPage(1, 1, 1, `{"Iccid":"8986","Status":30,"DataType":"singlecard"}`)}, "page"},
		{"flow 12 without a unit", map[int]string{1: lcPage(1, 1, 1, `{"Iccid":"8986","Status":"30","DataType":"singlecard","DataLevel":"12"}`)}, "DataLevel"},
		{"a flow of 1e400", map[int]string{1: lcPage(1, 1, 1, `{"Iccid":"8986","Status":"30","DataType":"singlecard","DataLevel":"1`+strings.Repeat("0", 400)+`MB"}`)}, "beyond"},
		{"negative usage", map[int]string{1: lcPage(1, 1, 1, `{"Iccid":"8986","Status":"30","DataType":"singlecard","PeriodAddFlow":"-5MB"}`)}, "negative"},
		{"a redirect", map[int]string{1: lcPage(1, 2, 15, ten(0)...), 2: "REDIRECT https://signin.example.com/?AccessKeyId=k"}, "signin.example.com"},
		{"a BOM", map[int]string{1: "\ufeff" + lcPage(1, 1, 1, ten(0)[0])}, "page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lcFetch(t, tc.pages)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "AccessKeyId=k")
		})
	}
}
