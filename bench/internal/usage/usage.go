// Package usage is what a measured site reports of itself at GET
// /debug/usage, shared by the site and the driver that reads it.
package usage

import "time"

// Usage is the site process's own CPU time and peak resident set size,
// from getrusage(RUSAGE_SELF).
type Usage struct {
	Impl      string `json:"impl"`
	UserNanos int64  `json:"user_ns"`
	SysNanos  int64  `json:"sys_ns"`
	MaxRSSKiB int64  `json:"max_rss_kib"`
	// HeapAllocs and HeapAllocBytes count the objects and bytes allocated
	// on the heap since the process started (runtime/metrics).
	HeapAllocs     uint64 `json:"heap_allocs"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	// VoluntarySwitches and InvoluntarySwitches count the process's
	// context switches (getrusage's nvcsw and nivcsw).
	VoluntarySwitches   int64  `json:"nvcsw"`
	InvoluntarySwitches int64  `json:"nivcsw"`
	GoVersion           string `json:"go_version"`
	GOMAXPROCS          int    `json:"gomaxprocs"`
}

// CPU is the user and system time together.
func (u Usage) CPU() time.Duration { return time.Duration(u.UserNanos + u.SysNanos) }
