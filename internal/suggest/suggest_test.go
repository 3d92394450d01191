package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"interval", "page_size", "rate"}
	for _, tc := range []struct {
		name string
		max  int
		want string
	}{
		{"intervl", 2, "interval"},
		{"pagesize", 2, "page_size"},
		{"rat", 1, "rate"},
		{"colour", 3, ""},
		{"", 3, ""},
	} {
		if got := Closest(tc.name, names, tc.max); got != tc.want {
			t.Errorf("Closest(%q, %d) = %q, want %q", tc.name, tc.max, got, tc.want)
		}
	}
}
