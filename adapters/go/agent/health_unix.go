//go:build unix

package agent

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// residentMB is the resident set size in MiB: VmRSS from /proc/self/status, else getrusage's peak (the best
// there is without /proc).
func residentMB() float64 {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		scanner := bufio.NewScanner(f)
		for scanner.Scan() {
			line := scanner.Bytes()
			if !bytes.HasPrefix(line, []byte("VmRSS:")) {
				continue
			}
			fields := bytes.Fields(line[len("VmRSS:"):])
			if len(fields) > 0 {
				if kb, err := strconv.ParseFloat(string(fields[0]), 64); err == nil {
					return kb / 1024
				}
			}
			break
		}
	}
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	peak := float64(usage.Maxrss)
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return peak / (1024 * 1024) // bytes there, kB elsewhere
	}
	return peak / 1024
}
