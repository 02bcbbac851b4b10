package aspectipc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The pipe tests are not parallel: some set the process umask (and, off Linux, ListenPipe
// changes it for an instant), which parallel tests creating files could observe; some set
// testHookAfterBind.

func TestListenPipeCreatesA0600Socket(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "p.sock")
	s, err := ListenPipe(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := s.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := DialPipe(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

// withUmask runs f with the process umask set to mask.
func withUmask(mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

// withHookAfterBind runs f with testHookAfterBind set to hook.
func withHookAfterBind(hook func(path string), f func()) {
	testHookAfterBind = hook
	defer func() { testHookAfterBind = nil }()
	f()
}

// The socket file is 0600 the instant bind creates it, under a permissive umask: nothing has to
// chmod it by path afterwards.
func TestListenPipeSocketIs0600WhenCreated(t *testing.T) {
	for _, mask := range []int{0, 0o022} {
		path := filepath.Join(shortTempDir(t), "p.sock")
		var atBind os.FileMode
		var atBindErr error
		var s *PipeServer
		var err error
		withUmask(mask, func() {
			withHookAfterBind(func(p string) {
				fi, err := os.Lstat(p)
				if err == nil {
					atBind = fi.Mode()
				}
				atBindErr = err
			}, func() { s, err = ListenPipe(path) })
		})
		if err != nil {
			t.Fatalf("umask %#o: %v", mask, err)
		}
		if atBindErr != nil || atBind.Type() != os.ModeSocket || atBind.Perm() != 0o600 {
			t.Fatalf("umask %#o: mode right after bind %v, %v; want a 0600 socket", mask, atBind, atBindErr)
		}
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("umask %#o: mode once listening %v, %v", mask, fi.Mode(), err)
		}
		s.Close()
	}
}

// A local user who can write to the socket's directory swaps a symlink in for the fresh socket:
// the symlink's target keeps its mode (nothing chmods by path), and ListenPipe fails instead of
// announcing a path that is not its socket.
func TestListenPipeSocketSwappedForASymlink(t *testing.T) {
	dir := shortTempDir(t)
	target := filepath.Join(dir, "victim")
	if err := os.WriteFile(target, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(target, 0o644)
	path := filepath.Join(dir, "p.sock")
	var s *PipeServer
	var err error
	withUmask(0o022, func() {
		withHookAfterBind(func(p string) {
			tmp := p + ".lnk"
			if err := os.Symlink(target, tmp); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Error(err)
			}
		}, func() { s, err = ListenPipe(path) })
	})
	if fi, statErr := os.Stat(target); statErr != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("the symlink's target: mode %v, %v; want 0644 untouched", fi.Mode(), statErr)
	}
	if err == nil {
		s.Close()
		t.Fatal("ListenPipe succeeded on a path that is now a symlink")
	}
	if !strings.Contains(err.Error(), "was replaced after bind") {
		t.Fatalf("error %q", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Fatalf("the symlink is not ours to remove: %v, %v", fi, err)
	}
}

func TestListenPipeExistingFiles(t *testing.T) {
	dir := shortTempDir(t)

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	s, err := ListenPipe(stale)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s.Close()

	live := filepath.Join(dir, "live.sock")
	liveListener, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer liveListener.Close()
	if _, err := ListenPipe(live); !errors.Is(err, ErrAddressInUse) || err.Error() != "address in use by a live worker: "+live {
		t.Fatalf("live socket: %v", err)
	}
	if _, err := os.Lstat(live); err != nil {
		t.Fatalf("live socket removed: %v", err)
	}

	regular := filepath.Join(dir, "regular.sock")
	os.WriteFile(regular, []byte("keep"), 0o600)
	if _, err := ListenPipe(regular); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("regular file: %v", err)
	}
	// A symlink is not followed, even to a stale socket: it is never removed.
	target := filepath.Join(dir, "target.sock")
	tl, _ := net.ListenUnix("unix", &net.UnixAddr{Name: target, Net: "unix"})
	tl.SetUnlinkOnClose(false)
	tl.Close()
	link := filepath.Join(dir, "link.sock")
	os.Symlink(target, link)
	if _, err := ListenPipe(link); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("symlink: %v", err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Fatalf("symlink removed: %v", err)
	}
	dirPath := filepath.Join(dir, "adir")
	os.Mkdir(dirPath, 0o700)
	if _, err := ListenPipe(dirPath); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("directory: %v", err)
	}
}

func TestPipeServerCloseRemovesOnlyItsOwnFile(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "p.sock")
	s, err := ListenPipe(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaces the file: Close must leave the new one alone.
	os.Remove(path)
	os.WriteFile(path, []byte("other"), 0o600)
	s.Close()
	if b, err := os.ReadFile(path); err != nil || string(b) != "other" {
		t.Fatalf("replacement file: %q, %v", b, err)
	}
}
