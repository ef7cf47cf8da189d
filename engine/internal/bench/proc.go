package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoProc reports that /proc cannot tell about a process: it has exited,
// or the system is not Linux.
var ErrNoProc = errors.New("bench: no /proc entry")

// clockTicks is Linux's USER_HZ, the unit of the times in /proc/PID/stat;
// it is 100 on every architecture Go supports.
const clockTicks = 100

// TreeCPU returns the CPU time (user and system) of pid and of each of its
// child processes (an engine's plugins), by pid.
func TreeCPU(pid int) (map[int]time.Duration, error) {
	_, cpu, err := stat(pid)
	if err != nil {
		return nil, err
	}
	out := map[int]time.Duration{pid: cpu}
	for _, c := range Children(pid) {
		if _, cpu, err := stat(c); err == nil {
			out[c] = cpu
		}
	}
	return out, nil
}

// CPUSince returns the CPU time the processes of after spent since before,
// both from TreeCPU: a process that started in between counts whole, one
// that ended in between is not counted.
func CPUSince(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, c := range after {
		d += c - before[pid]
	}
	return d
}

// PeakRSS returns the peak resident set (VmHWM) of pid plus those of its
// child processes, in KiB.
func PeakRSS(pid int) (int64, error) {
	sum, err := hwm(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range Children(pid) {
		if kib, err := hwm(c); err == nil {
			sum += kib
		}
	}
	return sum, nil
}

// Children returns the processes whose parent is pid.
func Children(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if ppid, _, err := stat(p); err == nil && ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// stat reads the parent and the CPU time (utime + stime) of pid.
func stat(pid int) (ppid int, cpu time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	return parseStat(data)
}

// parseStat parses /proc/PID/stat: the command name, in parentheses, may
// hold spaces and parentheses, so the fields are counted from the last
// ')'.
func parseStat(data []byte) (ppid int, cpu time.Duration, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return 0, 0, fmt.Errorf("bench: /proc stat %q: no command name", data)
	}
	f := strings.Fields(string(data[i+2:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("bench: /proc stat %q: %d fields after the name, want at least 13", data, len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("bench: /proc stat: %w", err)
	}
	return ppid, time.Duration(ut+st) * time.Second / clockTicks, nil
}

// RSS returns the resident set (VmRSS) of pid plus those of its child
// processes, in KiB.
func RSS(pid int) (int64, error) {
	sum, err := statusField(pid, "VmRSS:")
	if err != nil {
		return 0, err
	}
	for _, c := range Children(pid) {
		if kib, err := statusField(c, "VmRSS:"); err == nil {
			sum += kib
		}
	}
	return sum, nil
}

// hwm reads the VmHWM of pid, in KiB.
func hwm(pid int) (int64, error) { return statusField(pid, "VmHWM:") }

// statusField reads a "Name: 123 kB" line of /proc/<pid>/status, in KiB.
func statusField(pid int, name string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	return kiBField(data, name)
}

// kiBField returns the value of the "Name:   123 kB" line of a /proc file.
func kiBField(data []byte, name string) (int64, error) {
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, name); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("bench: no %s line", name)
}
