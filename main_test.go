package vippslogin_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, except in the child process of TestLoad: there,
// with loadProviderEnv set, the test binary serves a mock provider instead
// (see serveLoadProvider).
func TestMain(m *testing.M) {
	if cfg, ok := os.LookupEnv(loadProviderEnv); ok {
		os.Exit(serveLoadProvider(cfg))
	}
	os.Exit(m.Run())
}
