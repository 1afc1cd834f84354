// Command reap removes what the demo's pods may leave on the machine after
// its daemon stopped (pods outlive their daemon by design): containers and
// conmon monitors, mounts and pinned network namespaces below the given
// directories, the CNI NAT rules for the subnet and the bridge. The demo
// runs it in its exit trap so that a failed run leaves nothing behind
// either; it touches nothing that is not named by its arguments.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/peapod/peapod/internal/testdaemon"
)

func main() {
	bridge := flag.String("bridge", "", "the daemon's bridge (required)")
	subnet := flag.String("subnet", "", "the daemon's pod subnet (required)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: reap --bridge NAME --subnet CIDR DIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *bridge == "" || *subnet == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	testdaemon.Reap(flag.Args(), *bridge, *subnet)
}
