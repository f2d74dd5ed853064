//go:build unix

package main

import (
	"runtime"
	"syscall"
)

func getUsage() (usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, err
	}
	maxRSS := int64(ru.Maxrss) // KiB on Linux and the BSDs
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		maxRSS /= 1024 // bytes there
	}
	return usage{
		UserNanos: ru.Utime.Nano(),
		SysNanos:  ru.Stime.Nano(),
		MaxRSSKiB: maxRSS,
	}, nil
}
