package conmon_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// smapsRollup returns the Rss and Pss of pid in KiB.
func smapsRollup(pid int) (rss, pss int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Rss:":
			rss = n
		case "Pss:":
			pss = n
		}
	}
	return rss, pss, sc.Err()
}

// BenchmarkConmonMemory reports the memory conmon costs per sleeping
// container, averaged over b.N containers running at once (PSS shrinks as
// more conmons share the same library pages). conmon is the only process
// the monitor adds: runc exits after the create.
// Run with: go test -run '^$' -bench ConmonMemory -benchtime 1x (or 10x).
func BenchmarkConmonMemory(b *testing.B) {
	var pids []int
	for i := 0; i < b.N; i++ {
		pids = append(pids, run(b, options(b, nil, "sleep", "1000")).ConmonPID)
	}
	var rss, pss int
	for _, pid := range pids {
		r, p, err := smapsRollup(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss += r
		pss += p
	}
	b.ReportMetric(float64(rss)/float64(b.N), "rss-KiB/conmon")
	b.ReportMetric(float64(pss)/float64(b.N), "pss-KiB/conmon")
}
