package aspectipc

import (
	"bytes"
	"os"
	"strconv"
)

// groupMembers lists the live processes of process group pgid other than the caller, from /proc.
// Zombies (exited, not reaped yet) are left out: they are gone already.
func groupMembers(pgid int) ([]int, bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	self := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so fields are
		// counted after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := bytes.Fields(stat[i+1:])
		if len(fields) < 3 || string(fields[0]) == "Z" {
			continue
		}
		if group, err := strconv.Atoi(string(fields[2])); err == nil && group == pgid {
			out = append(out, pid)
		}
	}
	return out, true
}
