//go:build !unix

package agent

import (
	"runtime"
	"time"
)

// processCPU is not measured here.
func processCPU() time.Duration {
	return 0
}

// residentMB is the memory the Go runtime holds from the system: the nearest thing to a resident size here.
func residentMB() float64 {
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return float64(stats.Sys) / (1024 * 1024)
}
