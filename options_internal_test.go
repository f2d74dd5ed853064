package vippslogin

import (
	"runtime/debug"
	"strings"
	"testing"
)

// The Vipps-System-Name and -Version a site sends by default come from its
// build information, as header values of 30 printable characters at most.
func TestSystemOf(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}}
	tests := []struct {
		name          string
		bi            *debug.BuildInfo
		wantName, ver string
	}{
		{"no build information", nil, "go-program", "devel"},
		{"released module", &debug.BuildInfo{Main: debug.Module{Path: "github.com/acme/shop", Version: "v1.4.2"}}, "shop", "v1.4.2"},
		{"built from a checkout", &debug.BuildInfo{Main: debug.Module{Path: "example.com/shop", Version: "(devel)"}, Settings: rev}, "shop", "0123456789ab"},
		{"modified checkout", &debug.BuildInfo{Main: debug.Module{Path: "example.com/shop", Version: "(devel)"},
			Settings: append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})}, "shop", "0123456789ab+dirty"},
		{"go run of files", &debug.BuildInfo{Path: "command-line-arguments", Main: debug.Module{Path: "command-line-arguments"}}, "command-line-arguments", "devel"},
		{"long and odd", &debug.BuildInfo{Main: debug.Module{Path: "x/" + strings.Repeat("ø", 5) + strings.Repeat("a", 40), Version: "v1.0.0-\x01rc"}}, strings.Repeat("a", 30), "v1.0.0-rc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, version := systemOf(tc.bi)
			if name != tc.wantName || version != tc.ver {
				t.Errorf("systemOf = %q, %q; want %q, %q", name, version, tc.wantName, tc.ver)
			}
		})
	}
}
