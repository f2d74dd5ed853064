//go:build !unix

package main

import (
	"errors"
	"runtime"

	"github.com/vippslogin/vippslogin/bench/internal/usage"
)

func getUsage() (usage.Usage, error) {
	return usage.Usage{}, errors.New("getrusage is not available on " + runtime.GOOS)
}
