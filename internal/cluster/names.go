package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
)

// LeasesBucket and MembersBucket name the KV buckets of a cluster.
func LeasesBucket(cluster string) string  { return "simwatch_" + cluster + "_leases" }
func MembersBucket(cluster string) string { return "simwatch_" + cluster + "_members" }

// MemberID makes a member id that is a valid KV key and unique even when a
// process restarts with the same pid: the host name reduced to
// [A-Za-z0-9_-] (at most 40 characters), the pid and 6 random hex digits.
func MemberID(host string, pid int) string {
	var b strings.Builder
	for _, r := range host {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	h := b.String()
	if strings.Trim(h, "_") == "" {
		h = "host"
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	return h + "-" + strconv.Itoa(pid) + "-" + hex.EncodeToString(rnd[:])
}
