package aspectipc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
)

// PipePath computes default data channel paths (PROTOCOL.md section 6). The zero value computes
// paths for the running platform in its default directory.
type PipePath struct {
	// Directory is where the socket goes; "" means /tmp (\\.\pipe on Windows).
	Directory string
	// Platform is a GOOS value ("linux", "darwin", "windows", ...); "" means runtime.GOOS.
	Platform string
}

// ForModule returns the data path for a worker id within a namespace: <dir>/<namespace>-<id>.sock
// on Unix, \\.\pipe\<namespace>-<id> on Windows. Characters outside [A-Za-z0-9._-] are replaced
// by "_", and a digest of the unsanitized names is appended when that changed anything or when the
// path would exceed the platform's socket path limit, so different names never share a path. It
// fails with ErrEmptyName or ErrDirectoryTooLong.
func (p PipePath) ForModule(namespace, id string) (string, error) {
	if namespace == "" || id == "" {
		return "", ErrEmptyName
	}
	platform := p.Platform
	if platform == "" {
		platform = runtime.GOOS
	}
	dir, sep, suffix, limit := p.Directory, "/", ".sock", 103
	switch platform {
	case "windows":
		sep, suffix, limit = `\`, "", 256
		if dir == "" {
			dir = `\\.\pipe`
		}
	case "linux", "android":
		limit = 107
	}
	if dir == "" {
		dir = "/tmp"
	}
	dir = strings.TrimRight(dir, sep) // "/run/app/" is "/run/app"; "/" becomes ""
	ns, nsChanged := sanitizeName(namespace)
	wid, idChanged := sanitizeName(id)
	base := ns + "-" + wid
	plain := dir + sep + base + suffix
	if !nsChanged && !idChanged && len(plain) <= limit {
		return plain, nil
	}
	sum := sha256.Sum256([]byte(namespace + "\x00" + id))
	digest := hex.EncodeToString(sum[:8])
	keep := limit - len(dir+sep) - len("-"+digest+suffix)
	if keep < 1 {
		return "", fmt.Errorf("%w: %q leaves no room for a socket name within %d bytes", ErrDirectoryTooLong, dir, limit)
	}
	if keep > len(base) {
		keep = len(base)
	}
	return dir + sep + base[:keep] + "-" + digest + suffix, nil
}

// sanitizeName replaces every code point outside [A-Za-z0-9._-] with "_" and reports whether it
// replaced any.
func sanitizeName(s string) (string, bool) {
	var b strings.Builder
	changed := false
	for _, r := range s {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	return b.String(), changed
}
