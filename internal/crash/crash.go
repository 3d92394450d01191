// Package crash holds named crash points: places where the watcher kills
// itself with SIGKILL when SIMWATCH_CRASH_AT names them. The crash tests use
// them to stop a real watcher process at an exact stage (after the snapshot
// commit, after publishing) and prove that a restart loses nothing. With the
// variable unset a point costs one string comparison.
package crash

import (
	"os"
	"syscall"
)

// Points.
const (
	AfterCommit  = "after-commit"  // the cycle is committed; nothing is published
	AfterPublish = "after-publish" // events are on the bus; nothing is delivered
)

var at = os.Getenv("SIMWATCH_CRASH_AT")

// Point kills the process, as kill -9 would, if name is the configured point.
func Point(name string) {
	if at == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
