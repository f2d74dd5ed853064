//go:build !unix

package main

import (
	"errors"
	"runtime"
)

func getUsage() (usage, error) {
	return usage{}, errors.New("getrusage is not available on " + runtime.GOOS)
}
