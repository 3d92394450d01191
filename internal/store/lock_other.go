//go:build !unix

package store

import "os"

// Elsewhere LockDir only records the pid: bbolt's own file lock (with its
// timeout) is what keeps two watchers apart there.
func flock(*os.File) error   { return nil }
func funlock(*os.File) error { return nil }
