package runtime

import (
	"fmt"

	"github.com/peapod/peapod/internal/procfs"
)

// procStart returns the start time of pid in clock ticks since boot: with
// the PID it names one process for the life of the machine, so a recycled
// PID is never taken for the pause process.
func procStart(pid int) (uint64, error) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0, err
	}
	if st.Exited() {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return st.StartTime, nil
}

// alive reports whether the process pid started at start still runs.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStart(pid)
	return err == nil && st == start
}
