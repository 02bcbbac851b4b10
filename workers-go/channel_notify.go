package aspectipc

import "sync"

// notificationQueue runs a channel's notification handlers one at a time, in arrival order
// (PROTOCOL.md 4.5): the next starts when the previous has returned. Requests still run
// concurrently, and responses and $/cancelRequest are handled by the read loop at once, never
// queued behind a notification.
//
// The notifications waiting for their handler are bounded: at most maxQueuedNotifications of them
// and maxQueuedNotificationBytes of their frames, as received (one is always accepted, whatever its
// size, when none waits). Beyond that the read loop waits for the handler to take the next one
// before it reads on (backpressure): none is dropped. A peer sending 5 MB notifications faster than
// their handler ran had 200 of them, 1 GB, queued here.
type notificationQueue struct {
	mu      sync.Mutex
	tasks   []handlerTask
	bytes   int           // the frame bytes of tasks
	running bool          // a goroutine is draining tasks
	taken   chan struct{} // when set, closed once a task is taken (the read loop waits for room)
}

const (
	// maxQueuedNotifications bounds the notifications waiting for their handler, per channel.
	maxQueuedNotifications = 1024
	// maxQueuedNotificationBytes bounds their frames, as received.
	maxQueuedNotificationBytes = 16 << 20
)

// notificationRoom waits, in the read loop, until a notification whose frame has size bytes may
// join the queue; false when the channel closed first. What the read loop holds back for one
// write (frameWriter.hold) is written before it waits.
func (c *Channel) notificationRoom(size int) bool {
	q := &c.notifications
	q.mu.Lock()
	for len(q.tasks) > 0 && (len(q.tasks) >= maxQueuedNotifications || q.bytes+size > maxQueuedNotificationBytes) {
		if q.taken == nil {
			q.taken = make(chan struct{})
		}
		taken := q.taken
		q.mu.Unlock()
		c.releaseHeld()
		select {
		case <-taken:
		case <-c.done:
			return false
		}
		q.mu.Lock()
	}
	q.mu.Unlock()
	return true
}

// enqueueNotification queues t, whose frame had size bytes (after notificationRoom); its inflight
// is registered already, so shutdown and close see it.
func (c *Channel) enqueueNotification(t handlerTask) {
	q := &c.notifications
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
	q.bytes += t.size
	if q.running {
		q.mu.Unlock()
		return
	}
	q.running = true
	q.mu.Unlock()
	go c.runNotifications()
}

// runNotifications runs the queued handlers until the queue is empty. A failing handler is logged
// by runHandler and does not stop the next; once the channel is closed, what is left is dropped.
func (c *Channel) runNotifications() {
	q := &c.notifications
	for {
		q.mu.Lock()
		if len(q.tasks) == 0 {
			q.running = false
			q.tasks = nil // not kept at the size of the longest queue
			q.mu.Unlock()
			return
		}
		t := q.tasks[0]
		q.tasks[0] = handlerTask{}
		q.tasks = q.tasks[1:]
		q.bytes -= t.size
		if q.taken != nil {
			close(q.taken)
			q.taken = nil
		}
		q.mu.Unlock()
		if c.base.Err() != nil {
			t.f.cancel(nil)
			c.finish(t.f)
			continue
		}
		c.runHandler(t.f, t.h, t.msg)
	}
}

// notificationsIdle reports whether no notification handler is queued or running, so that one run
// inline now keeps the arrival order: only the read loop queues notifications.
func (c *Channel) notificationsIdle() bool {
	q := &c.notifications
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.running
}
