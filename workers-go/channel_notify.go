package aspectipc

import "sync"

// notificationQueue runs a channel's notification handlers one at a time, in arrival order
// (PROTOCOL.md 4.5): the next starts when the previous has returned. Requests still run
// concurrently, and responses and $/cancelRequest are handled by the read loop at once, never
// queued behind a notification. The queue is not bounded: a bound would have to stop the read loop,
// and with it the responses a notification handler may be waiting for.
type notificationQueue struct {
	mu      sync.Mutex
	tasks   []handlerTask
	running bool // a goroutine is draining tasks
}

// enqueueNotification queues t; its inflight is registered already, so shutdown and close see it.
func (c *Channel) enqueueNotification(t handlerTask) {
	q := &c.notifications
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
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
			q.mu.Unlock()
			return
		}
		t := q.tasks[0]
		q.tasks[0] = handlerTask{}
		q.tasks = q.tasks[1:]
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
