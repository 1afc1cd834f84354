package conmon_test

import (
	"testing"

	"github.com/peapod/peapod/internal/procfs"
)

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
		r, p, err := procfs.Memory(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss += r
		pss += p
	}
	b.ReportMetric(float64(rss)/float64(b.N), "rss-KiB/conmon")
	b.ReportMetric(float64(pss)/float64(b.N), "pss-KiB/conmon")
}
