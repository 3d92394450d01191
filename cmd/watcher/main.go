// Command watcher is simwatch: it polls SIM connectivity providers, evaluates
// alert rules on what changed and delivers the events. See `watcher help`.
package main

import (
	"context"
	"os"

	"github.com/simwatch/simwatch/internal/app"
)

func main() {
	os.Exit(app.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
