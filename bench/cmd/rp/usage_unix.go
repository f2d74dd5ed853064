//go:build unix

package main

import (
	"runtime"
	"syscall"

	"github.com/vippslogin/vippslogin/bench/internal/usage"
)

func getUsage() (usage.Usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage.Usage{}, err
	}
	maxRSS := int64(ru.Maxrss) // KiB on Linux and the BSDs
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		maxRSS /= 1024 // bytes there
	}
	return usage.Usage{
		UserNanos: ru.Utime.Nano(),
		SysNanos:  ru.Stime.Nano(),
		MaxRSSKiB: maxRSS,

		VoluntarySwitches:   int64(ru.Nvcsw),
		InvoluntarySwitches: int64(ru.Nivcsw),
	}, nil
}
