package aspectipc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// The pipe tests are not parallel: ListenPipe changes the process umask for an instant, which
// parallel tests creating files could observe.

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
