//go:build unix

package aspectipc

import (
	"os"
	"syscall"
	"time"
)

// groupTermGrace is how long the other members of the worker's process group get to exit after
// SIGTERM before they are sent SIGKILL: short, since the worker itself must exit within 200 ms
// of losing its parent (PROTOCOL.md 8.3).
const groupTermGrace = 100 * time.Millisecond

// stopProcessGroup ends the processes the worker started, when its parent is gone: the parent
// starts every worker as the leader of a process group of its own (a new session) and would have
// signalled that group, but it is dead. Members get SIGTERM, then SIGKILL if they are still there
// after groupTermGrace. A worker that does not lead its group does nothing: the group is someone
// else's (a shell's, a test runner's).
func stopProcessGroup(signals signalWatch) {
	pid := os.Getpid()
	if syscall.Getpgrp() != pid {
		return
	}
	members, listed := groupMembers(pid)
	if !listed {
		signalOwnGroup(pid, signals)
		return
	}
	for _, m := range members {
		_ = syscall.Kill(m, syscall.SIGTERM)
	}
	deadline := time.Now().Add(groupTermGrace)
	for len(members) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		members, _ = groupMembers(pid)
	}
	// Listed again: what a member started meanwhile is caught too.
	members, _ = groupMembers(pid)
	for _, m := range members {
		_ = syscall.Kill(m, syscall.SIGKILL)
	}
}

// signalOwnGroup is the fallback where the members cannot be listed: SIGTERM to the whole group,
// the worker included. The worker's own SIGTERM lands in the signal watch (it is already stopping)
// and is waited for, so that it cannot arrive after the watch ends and kill the worker by default;
// a worker that ignores SIGTERM is not affected at all.
func signalOwnGroup(pgid int, signals signalWatch) {
	for drained := false; !drained; {
		select {
		case <-signals.ch:
		default:
			drained = true
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil || !signals.watchesTERM {
		return
	}
	select {
	case <-signals.ch:
	case <-time.After(groupTermGrace):
	}
}

// parentPollInterval is how often the worker checks that its parent is still the same process.
const parentPollInterval = 100 * time.Millisecond

// startParent is the worker's parent when the process started, read as early as possible: a
// parent that dies before Serve runs is still noticed.
var startParent = os.Getppid()

// watchParent returns a channel closed when the worker's parent process is no longer the one that
// started it (it died and the worker was adopted), which the end of stdin does not always tell:
// another process may hold the write end of the worker's stdin. It stops watching when done is
// closed.
func watchParent(done <-chan struct{}) <-chan struct{} {
	gone := make(chan struct{})
	ppid := startParent
	go func() {
		ticker := time.NewTicker(parentPollInterval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				if os.Getppid() != ppid {
					close(gone)
					return
				}
			}
		}
	}()
	return gone
}
