package activities

import (
	"runtime/debug"
	"sync"
)

// version is stamped at build time with -ldflags "-X .../activities.version=v1.2.3"; without
// it ToolVersion reads the build's module version and VCS revision.
var version string

// ToolVersion is the version written into every manifest and restore marker: the stamped
// version, else the main module's version, else "devel+<vcs revision>[-dirty]".
var ToolVersion = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel+" + rev
})
