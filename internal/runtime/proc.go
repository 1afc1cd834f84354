package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStart returns the start time of pid in clock ticks since boot (field
// 22 of /proc/PID/stat): with the PID it names one process for the life of
// the machine, so a recycled PID is never taken for the pause process.
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process pid started at start still runs.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStart(pid)
	return err == nil && st == start
}
