package procfs

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4242 (we) (ird name) S 17 4242 4242 0 -1 4194560 120 0 0 0 31 7 0 0 20 0 1 0 98765 10000 200 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{State: 'S', PPID: 17, UTime: 31, STime: 7, StartTime: 98765}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "12 no-parens S 1", "12 (x) S 1 2 3", "12 (x) S notanumber 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted a malformed line", bad)
		}
	}
}

func TestLiveAndEndedProcesses(t *testing.T) {
	self, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.PPID != os.Getppid() || self.Exited() || self.StartTime == 0 {
		t.Errorf("own stat = %+v, want parent %d, running, a start time", self, os.Getppid())
	}
	if rss, pss, err := Memory(os.Getpid()); err != nil || rss <= 0 || pss <= 0 || pss > rss {
		t.Errorf("own memory rss=%d pss=%d (%v)", rss, pss, err)
	}
	if hwm, err := StatusKiB(os.Getpid(), "VmHWM"); err != nil || hwm <= 0 {
		t.Errorf("own VmHWM = %d (%v)", hwm, err)
	}
	if _, err := StatusKiB(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("a missing status field was not an error")
	}

	// A child that has exited but is not reaped yet is a zombie: not alive.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	for Alive(pid) { // it exits at once, and is a zombie until Wait below
		time.Sleep(time.Millisecond)
	}
	st, err := ReadStat(pid)
	if err != nil || !st.Exited() {
		t.Errorf("exited child: %+v %v, want a zombie", st, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Errorf("reaped child %d still alive", pid)
	}
}

func TestPIDsHoldsThisProcess(t *testing.T) {
	if !PIDs()[os.Getpid()] {
		t.Error("PIDs() lacks this process")
	}
}
