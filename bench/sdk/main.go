// Command sdk-list lists every card of a GSL account page by page, one page
// after the other, with Huawei's official Go SDK: the baseline `watcher
// bench` compares the watcher's cycles with. It prints the elapsed time and
// the number of cards as one JSON line.
//
// It is a module of its own so that the main module does not depend on the
// SDK (a 47 MB download); `make bench` builds it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	gsl "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/gsl/v3"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/gsl/v3/model"
)

func main() {
	endpoint := flag.String("endpoint", "", "GSL endpoint, e.g. http://127.0.0.1:9090")
	ak := flag.String("ak", "", "access key")
	sk := flag.String("sk", "", "secret key")
	limit := flag.Int64("limit", 500, "page size (GSL accepts 10 to 500)")
	flag.Parse()
	if err := run(*endpoint, *ak, *sk, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "sdk-list:", err)
		os.Exit(1)
	}
}

func run(endpoint, ak, sk string, limit int64) error {
	if endpoint == "" || ak == "" || sk == "" {
		return fmt.Errorf("--endpoint, --ak and --sk are required")
	}
	// The GSL client takes basic (project) credentials. A project id given
	// here spares the SDK its IAM lookup of the project, which the simulator
	// does not serve (and which a real run does once, then caches).
	cred, err := basic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId("simwatch-bench").SafeBuild()
	if err != nil {
		return err
	}
	hc, err := gsl.GslClientBuilder().
		WithEndpoints([]string{endpoint}).
		WithCredential(cred).
		WithHttpConfig(config.DefaultHttpConfig().WithTimeout(60 * time.Second)).
		SafeBuild()
	if err != nil {
		return err
	}
	client := gsl.NewGslClient(hc)
	start := time.Now()
	cards, pages := 0, 0
	for offset := int64(1); ; offset++ {
		resp, err := client.ListSimCards(&model.ListSimCardsRequest{Limit: &limit, Offset: &offset})
		if err != nil {
			return fmt.Errorf("page %d: %w", offset, err)
		}
		pages++
		n := 0
		if resp.SimCards != nil {
			n = len(*resp.SimCards)
		}
		cards += n
		total := int64(0)
		if resp.Count != nil {
			total = *resp.Count
		}
		if n == 0 || int64(cards) >= total {
			break
		}
	}
	elapsed := time.Since(start)
	return json.NewEncoder(os.Stdout).Encode(struct {
		ElapsedMS float64 `json:"elapsed_ms"`
		Cards     int     `json:"cards"`
		Pages     int     `json:"pages"`
	}{float64(elapsed.Microseconds()) / 1000, cards, pages})
}
