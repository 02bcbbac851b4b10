package aspectipc

// holdLimit bounds the bytes held back by hold; a frame that would go over it is written at once,
// after what is held.
const holdLimit = 64 << 10

// holdFrameLimit is the largest frame hold copies: a larger one gains little from sharing a
// system call, and is written at once.
const holdFrameLimit = 8 << 10

// hold is write for the read loop while it works through what one read brought: a small frame is
// copied and held back, to go out with the next write (release at the end of the read's frames, or
// any sender's write before that), so that the responses to a read's requests cost one system
// call, not one each. It returns nil once the frame is held; a write failing later fails the
// writer, and with it every later write, as any write does. A frame that would take what is held
// over holdLimit is written at once, after it.
func (fw *frameWriter) hold(frame [][]byte) error { return fw.keep(frame, false) }

// holdReserved is hold for a sender that got room (room).
func (fw *frameWriter) holdReserved(frame [][]byte) error { return fw.keep(frame, true) }

func (fw *frameWriter) keep(frame [][]byte, reserved bool) error {
	size := 0
	for _, b := range frame {
		size += len(b)
	}
	fw.mu.Lock()
	if fw.err == nil && size <= holdFrameLimit && len(fw.held)+size <= holdLimit {
		if reserved {
			fw.encoding--
			fw.freeRoom()
		}
		if fw.held == nil {
			fw.held = make([]byte, 0, max(size, 4<<10))
		}
		for _, b := range frame {
			fw.held = append(fw.held, b...)
		}
		fw.mu.Unlock()
		return nil
	}
	fw.mu.Unlock()
	return fw.put(frame, nil, nil, reserved)
}

// release writes what hold held back, if anything (nil when nothing is held).
func (fw *frameWriter) release() error { return fw.write(nil) }
