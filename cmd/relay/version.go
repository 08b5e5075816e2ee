package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// buildStamp is what -ldflags "-X main.version=... -X main.commit=...
// -X main.date=..." set; an empty field is filled from the build info the Go
// toolchain embeds (module version under go install, VCS stamp under go build).
type buildStamp struct {
	version, commit, date string
}

// versionInfo is what `relay version` prints.
type versionInfo struct {
	Version, Commit, Date, Go, Platform string
	Modified                            bool
}

// resolveVersion merges the ldflags stamp over the toolchain's build info
// (nil when the binary has none).
func resolveVersion(s buildStamp, bi *debug.BuildInfo, goVersion, platform string) versionInfo {
	v := versionInfo{Version: s.version, Commit: s.commit, Date: s.date, Go: goVersion, Platform: platform}
	if bi != nil {
		if mv := bi.Main.Version; v.Version == "" && mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = kv.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = kv.Value
				}
			case "vcs.modified":
				v.Modified = kv.Value == "true" && s.commit == ""
			}
		}
		if v.Go == "" {
			v.Go = bi.GoVersion
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	if len(v.Commit) > 12 {
		v.Commit = v.Commit[:12]
	}
	if v.Modified {
		v.Commit += "-dirty"
	}
	return v
}

func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "relay %s\n", v.Version)
	fmt.Fprintf(&b, "  commit  %s\n", orUnknown(v.Commit))
	fmt.Fprintf(&b, "  built   %s\n", orUnknown(v.Date))
	fmt.Fprintf(&b, "  go      %s %s\n", v.Go, v.Platform)
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// currentVersion is this binary's version.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(buildStamp{version: version, commit: commit, date: date}, bi, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
}
