package app

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release, set at build time:
//
//	go build -ldflags "-X github.com/simwatch/simwatch/internal/app.Version=v1.2.0" ./cmd/watcher
//
// Left empty, the version comes from the build information Go records
// (the module version and the VCS revision).
var Version string

// Revision is the commit, set at build time like Version, for builds that
// have no VCS information of their own (a Docker build without .git).
var Revision string

// versionInfo is what `watcher version` reports.
type versionInfo struct {
	Version  string // e.g. v1.2.0, or "devel"
	Revision string // VCS commit, when recorded
	Modified bool   // the tree had uncommitted changes
	Go       string
}

func (v versionInfo) String() string {
	s := "watcher " + v.Version
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " (commit " + rev
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + v.Go + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func currentVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	v := buildVersion(Version, bi, ok, runtime.Version())
	if v.Revision == "" {
		v.Revision = Revision
	}
	return v
}

// buildVersion prefers the version given by -ldflags; without one it takes
// the module version Go stamped (a tag or pseudo-version when built from a
// checkout, "(devel)" otherwise). The revision comes from the build
// settings either way, so a release build still names its commit.
func buildVersion(ldflag string, bi *debug.BuildInfo, ok bool, goVersion string) versionInfo {
	v := versionInfo{Version: ldflag, Go: goVersion}
	if ok && bi != nil {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	// Go's pseudo-versions mark a dirty tree with +dirty; say it once.
	if strings.HasSuffix(v.Version, "+dirty") {
		v.Modified = true
	}
	return v
}

func versionCmd(_ context.Context, c *call) error {
	if err := positionals(c.cmd, c.args, 0, 0, ""); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, currentVersion())
	return nil
}
