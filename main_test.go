package vippslogin_test

import (
	"os"
	"testing"

	"github.com/vippslogin/vippslogin/internal/testsvc"
)

// TestMain runs the tests, and says how many were skipped for a missing
// service (testsvc.Main), except in the child process of TestLoad: there,
// with loadProviderEnv set, the test binary serves a mock provider instead
// (see serveLoadProvider).
func TestMain(m *testing.M) {
	if cfg, ok := os.LookupEnv(loadProviderEnv); ok {
		os.Exit(serveLoadProvider(cfg))
	}
	os.Exit(testsvc.Main(m))
}
