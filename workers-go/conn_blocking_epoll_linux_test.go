//go:build linux

package aspectipc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An authenticated data connection leaves the runtime's epoll set (conn_blocking_unix.go): left
// there, every message in and every write woke the poller's thread. Read from the worker's
// /proc: its sockets, and what each of its epoll descriptors watches.
func TestAuthenticatedDataSocketLeavesThePoller(t *testing.T) {
	t.Parallel()
	w, path := readyWorker(t, nil)
	pid := w.cmd.Process.Pid
	listener := listenerInode(t, path)

	d := dialData(t, path)
	// Before $/hello the connection is on the poller, like the listener: seeing it there shows
	// that this test reads the epoll set right.
	deadline := time.Now().Add(10 * time.Second)
	for len(watchedConnections(t, pid, listener)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the unauthenticated connection never showed in the worker's epoll set")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := d.hello(testToken); r["result"] == nil {
		t.Fatalf("$/hello: %v", r)
	}
	if r := d.call(2, "echo", []any{"x"}); !sameValue(r["result"], []any{"x"}) {
		t.Fatalf("echo: %v", r)
	}
	sockets := socketInodes(t, pid)
	delete(sockets, listener)
	if len(sockets) == 0 {
		t.Fatal("the worker holds no socket but its listener: where is the data connection?")
	}
	if watched := watchedConnections(t, pid, listener); len(watched) != 0 {
		t.Fatalf("sockets still in the worker's epoll set after $/hello: %v (its sockets: %v)", watched, sockets)
	}
	if !epollWatches(t, pid)[listener] {
		t.Fatal("the listener is not in the epoll set: the test no longer sees what it reads")
	}
	if r := d.call(3, "echo", []any{"y"}); !sameValue(r["result"], []any{"y"}) {
		t.Fatalf("echo after the check: %v", r)
	}
}

// listenerInode is the inode of the socket listening at path (/proc/net/unix).
func listenerInode(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(lines.Text())
		if len(fields) == 8 && fields[7] == path {
			inode, err := strconv.ParseUint(fields[6], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return inode
		}
	}
	t.Fatalf("no socket listens at %s", path)
	return 0
}

// socketInodes is the set of the inodes of process pid's sockets.
func socketInodes(t *testing.T, pid int) map[uint64]bool {
	t.Helper()
	inodes := map[uint64]bool{}
	for _, target := range fdTargets(t, pid) {
		var inode uint64
		if _, err := fmt.Sscanf(target, "socket:[%d]", &inode); err == nil {
			inodes[inode] = true
		}
	}
	return inodes
}

// epollWatches is the set of the inodes that process pid's epoll descriptors watch.
func epollWatches(t *testing.T, pid int) map[uint64]bool {
	t.Helper()
	watched := map[uint64]bool{}
	for fd, target := range fdTargets(t, pid) {
		if target != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd))
		if err != nil {
			t.Fatal(err)
		}
		// tfd:        5 events: 8000201d data: ... pos:0 ino:1b2f sdev:8
		for _, line := range strings.Split(string(info), "\n") {
			if !strings.HasPrefix(line, "tfd:") {
				continue
			}
			for _, field := range strings.Fields(line) {
				if hexInode, ok := strings.CutPrefix(field, "ino:"); ok {
					inode, err := strconv.ParseUint(hexInode, 16, 64)
					if err != nil {
						t.Fatal(err)
					}
					watched[inode] = true
				}
			}
		}
	}
	return watched
}

// watchedConnections is process pid's sockets, the listener aside, that its epoll set watches.
func watchedConnections(t *testing.T, pid int, listener uint64) []uint64 {
	t.Helper()
	watched := epollWatches(t, pid)
	var found []uint64
	for inode := range socketInodes(t, pid) {
		if inode != listener && watched[inode] {
			found = append(found, inode)
		}
	}
	return found
}

// fdTargets maps process pid's descriptors to what they point to.
func fdTargets(t *testing.T, pid int) map[string]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, entry := range entries {
		if target, err := os.Readlink(filepath.Join(dir, entry.Name())); err == nil {
			targets[entry.Name()] = target
		}
	}
	return targets
}
