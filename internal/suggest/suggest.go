// Package suggest finds the name a user probably meant, for the "did you
// mean" hints of config keys, rule fields, commands and flags.
package suggest

// Closest is the name of names nearest to name, at most maxEdits edits
// away; "" when none is.
func Closest(name string, names []string, maxEdits int) string {
	best, bestD := "", maxEdits+1
	for _, n := range names {
		if d := levenshtein(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
