// Package procfs reads what peapod needs to know about a process from
// /proc: its state, parent, start time and CPU time (/proc/PID/stat), its
// resident and proportional memory (/proc/PID/smaps_rollup) and single
// fields of /proc/PID/status. The runtime uses it to tell a live pause
// process from a recycled PID; tests and benchmarks use it to count the
// processes and memory a pod costs.
package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of the times in /proc/PID/stat. It is 100
// on every Linux architecture Go supports.
const ClockTicks = 100

// Stat is the part of /proc/PID/stat peapod reads.
type Stat struct {
	State        byte   // R, S, D, T, Z (zombie), X (dead), ...
	PPID         int    // parent process
	UTime, STime uint64 // user and system CPU time, in ClockTicks
	StartTime    uint64 // start after boot, in ClockTicks: with the PID it names one process for the life of the machine
}

// Exited reports whether the process has ended (a zombie not yet reaped
// counts as ended).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	st, err := parseStat(data)
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat parses a stat line. The command name (field 2) may hold spaces
// and parentheses, so fields are counted after its last ')'.
func parseStat(data []byte) (Stat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return Stat{}, errors.New("malformed: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[11] and f[12]
	// fields 14 and 15 (utime, stime), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, errors.New("malformed: too few fields")
	}
	var st Stat
	var errs [4]error
	st.State = f[0][0]
	st.PPID, errs[0] = strconv.Atoi(f[1])
	st.UTime, errs[1] = strconv.ParseUint(f[11], 10, 64)
	st.STime, errs[2] = strconv.ParseUint(f[12], 10, 64)
	st.StartTime, errs[3] = strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return Stat{}, fmt.Errorf("malformed: %w", err)
	}
	return st, nil
}

// Alive reports whether pid exists and has not exited.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && !st.Exited()
}

// Memory returns the resident (Rss) and proportional (Pss) memory of pid in
// KiB, from /proc/PID/smaps_rollup.
func Memory(pid int) (rssKiB, pssKiB int, err error) {
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
		switch fields[0] {
		case "Rss:":
			rssKiB, _ = strconv.Atoi(fields[1])
		case "Pss:":
			pssKiB, _ = strconv.Atoi(fields[1])
		}
	}
	return rssKiB, pssKiB, sc.Err()
}

// StatusKiB returns a memory field of /proc/PID/status in KiB: VmHWM is the
// peak resident set since the process started, VmRSS the current one.
func StatusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// PIDs is the set of processes that exist now (the numeric entries of
// /proc), for counting the processes something added.
func PIDs() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out[pid] = true
		}
	}
	return out
}
